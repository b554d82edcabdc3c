"""The local executor's worker processes do not outlive their host, however it ends."""

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Host: a LocalExecutor with two workers; writes their pids once both have run a job, then waits to be killed.
_HOST = """
import os, sys, time
from compiler_opt.distributed import local

def worker_pid(_):
    time.sleep(0.5)  # long enough that both workers take a job
    return os.getpid()

if __name__ == "__main__":
    executor = local.LocalExecutor(2)
    pids = {pid for _, pid in executor.map_unordered(worker_pid, range(6))}
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(" ".join(map(str, sorted(pids))))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(900)
"""


def _alive(pid: int) -> bool:
    """True while `pid` runs (an exited process not yet reaped, a zombie, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_pool_workers_exit_when_their_host_is_killed(sig, tmp_path):
    script = tmp_path / "host.py"
    script.write_text(_HOST)
    pids_file = tmp_path / "worker_pids"
    host = subprocess.Popen(
        [sys.executable, str(script), str(pids_file)],
        cwd=_REPO,
        env={**os.environ, "PYTHONPATH": _REPO},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    workers = []
    try:
        # Generous: process starts can stall on a loaded machine; only the outcome below is the specification.
        deadline = time.monotonic() + 300
        while not pids_file.exists() and time.monotonic() < deadline:
            assert host.poll() is None, "the host exited before its workers ran"
            time.sleep(0.1)
        workers = [int(p) for p in pids_file.read_text().split()]
        assert len(workers) == 2 and all(map(_alive, workers)), f"two live workers expected, got {workers}"

        os.kill(host.pid, sig)  # the host alone, as a user's `kill` or the OOM killer would
        host.wait()

        deadline = time.monotonic() + 30
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in workers if _alive(p)] == [], "pool workers outlived their host"
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        host.kill()
        host.wait()
