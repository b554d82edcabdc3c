"""Faults of the compiler during one compile: the compile fails with its reason, leaves no process, FIFO or temporary
directory behind, and the collection run goes on with the other modules."""

import os
import signal
import subprocess
import sys
import time

import pytest

from bench.testkit import injection
from compiler_opt.rl import env, policies
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection
from compiler_opt.rl.imitation_learning import profiles
from compiler_opt.rl.inlining import task as task_lib

pytestmark = pytest.mark.integration

_TIMEOUT_S = 1.5


def _collect(modules, output_dir):
    return injection.collect_with_heuristic(modules, output_dir, timeout_s=_TIMEOUT_S)


@pytest.mark.parametrize(
    "mode, status, reason",
    [
        ("crash", env.FAILED, "clang exited with signal SIGSEGV"),
        ("exit_before_header", env.FAILED, "exit code 70\nfake clang: internal compiler error before the header"),
        ("stall", env.TIMEOUT, f"compile exceeded the {_TIMEOUT_S:g} s timeout"),
    ],
    ids=["crash", "exit_before_header", "stall"],
)
def test_a_compiler_fault_fails_only_its_module_with_the_reason_and_cleans_up(
    mode, status, reason, small_modules, fake_bin, compile_tmp, tmp_path
):
    faulty, *healthy = small_modules[:3]
    injection.write_fake_clang(fake_bin, mode, after=1, only=faulty.bc_path)
    out = str(tmp_path / "out")

    summary = _collect(small_modules[:3], out)

    by_module = {p.module: p for p in profiles.read_jsonl(os.path.join(out, collection.PROFILES_FILE))}
    assert summary["failed_modules"] == [faulty.name]
    outcome = by_module[faulty.name].results["heuristic"]
    assert (outcome.status, by_module[faulty.name].best) == (status, None)
    assert reason in outcome.error
    assert set(injection.read_records(out)) == {m.name for m in healthy}
    assert os.listdir(compile_tmp) == []
    injection.assert_no_process_mentions(compile_tmp)


def test_a_compiler_that_exits_leaving_a_child_has_its_whole_process_group_killed(small_modules, tmp_path):
    clang = injection.write_fake_clang(str(tmp_path / "bin"), "orphan")
    workdir = str(tmp_path / "work")
    os.makedirs(workdir)

    result = env.compile_module(
        small_modules[0], policies.parse("heuristic"), task=task_lib.InliningForSizeTask(clang=clang), tmp_root=workdir
    )

    assert result.status == env.FAILED and "exit code 70" in result.error
    injection.assert_no_process_mentions(workdir)


def test_a_compiler_that_keeps_sending_without_reading_advice_times_out(small_modules, tmp_path):
    clang = injection.write_fake_clang(str(tmp_path / "bin"), "flood")
    workdir = str(tmp_path / "work")
    os.makedirs(workdir)
    start = time.monotonic()

    result = env.compile_module(
        small_modules[0],
        policies.parse("heuristic"),
        task=task_lib.InliningForSizeTask(clang=clang),
        timeout_s=_TIMEOUT_S,
        tmp_root=workdir,
    )

    assert result.status == env.TIMEOUT
    assert time.monotonic() - start < _TIMEOUT_S + 10
    assert os.listdir(workdir) == []
    injection.assert_no_process_mentions(workdir)


# A host that starts the compile on an executor thread (as collection and evaluation do), then waits on it.
_HOST = """
import concurrent.futures, sys
from compiler_opt.rl import env, policies
from compiler_opt.rl.inlining import task as task_lib

class Module:
    name = "m"
    def command(self, clang, obj_path, extra_args=()):
        return [clang, obj_path]

task = task_lib.InliningForSizeTask(clang=sys.argv[2])
with concurrent.futures.ThreadPoolExecutor(2) as pool:
    if sys.argv[1] == "interactive":
        run = lambda: env.compile_module(Module(), policies.parse("heuristic"), task=task, tmp_root=sys.argv[3])
    else:
        run = lambda: env.compile_plain(Module(), task=task, tmp_root=sys.argv[3])
    pool.submit(run).result()
"""


@pytest.mark.parametrize("kind", ["interactive", "plain"])
def test_no_compiler_outlives_a_host_killed_with_sigkill(kind, tmp_path):
    # The fake compiler neither compiles nor opens the channel: only the death signal can stop it.
    clang = tmp_path / "bin" / "clang-sleeps"
    clang.parent.mkdir()
    clang.write_text("#!/usr/bin/env python3\nimport time\ntime.sleep(900)\n")
    clang.chmod(0o755)
    workdir = tmp_path / "work"
    workdir.mkdir()
    host = subprocess.Popen(
        [sys.executable, "-c", _HOST, kind, str(clang), str(workdir)], stdout=subprocess.DEVNULL, start_new_session=True
    )

    def compilers():
        return [pid for pid, _ in injection.processes_mentioning(str(clang)) if pid != host.pid]

    try:
        # Generous: on a loaded or slow machine the host's imports alone can take a minute; only the outcome below
        # is the specification. The compiler sleeps longer than this, so it cannot end on its own before the kill.
        deadline = time.monotonic() + 300
        while not compilers() and time.monotonic() < deadline:
            assert host.poll() is None, "the host exited before starting its compiler"
            time.sleep(0.05)
        assert compilers(), "the compiler never started"

        os.kill(host.pid, signal.SIGKILL)  # the host alone: the compiler has its own process group
        host.wait()

        injection.assert_no_process_mentions(str(clang))
    finally:
        for pid, _ in injection.processes_mentioning(str(clang)):
            os.kill(pid, signal.SIGKILL)
        host.kill()
        host.wait()
