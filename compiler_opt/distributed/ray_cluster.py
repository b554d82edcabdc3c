"""A throwaway multi-node Ray cluster on this machine, for tests and benchmarks.

Node i runs at loopback address 127.0.0.{i+2} (the head is 127.0.0.2), so Ray sees distinct nodes and every packet
stays on loopback: Ray replaces 127.0.0.1 itself by the machine's routable address, but not other loopback
addresses. Each node is one `ray start --block` in its own process group and its own temporary directory, with its
own free ports; stopping the cluster kills exactly those process groups (never `ray stop`, which would stop every
Ray on the machine).

  with LoopbackCluster(nodes=2, cpus_per_node=1) as cluster:
      RayExecutor(address=cluster.address, node_ip_address=cluster.head_ip)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

_STARTED = "Ray runtime started"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (with the pid, it names one process for good)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class LoopbackCluster:
    """Args: nodes (the first is the head), CPUs of each node, object store bytes of each node (Ray's minimum is
    about 75 MB), start_timeout_s per node."""

    def __init__(
        self,
        nodes: int = 2,
        cpus_per_node: int = 1,
        object_store_bytes: int = 100_000_000,
        start_timeout_s: float = 120.0,
    ):
        if not 1 <= nodes <= 200:
            raise ValueError(f"nodes must be in [1, 200], got {nodes}")
        self.node_ips = tuple(f"127.0.0.{i + 2}" for i in range(nodes))
        self.port = free_port(self.node_ips[0])
        self._cpus = cpus_per_node
        self._object_store_bytes = object_store_bytes
        self._timeout_s = start_timeout_s
        self._ray = os.path.join(os.path.dirname(sys.executable), "ray")
        self._procs: list[subprocess.Popen] = []
        self._dirs: list[str] = []
        # node -> {pid: start time} of its processes seen before its raylet was killed (no longer its descendants).
        self._orphans: dict[int, dict[int, str]] = {}

    @property
    def head_ip(self) -> str:
        return self.node_ips[0]

    @property
    def address(self) -> str:
        """The head's GCS address, for `ray.init(address=...)` and `ray start --address=...`."""
        return f"{self.head_ip}:{self.port}"

    def __enter__(self) -> LoopbackCluster:
        try:
            for i in range(len(self.node_ips)):
                self._start_node(i)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start_node(self, i: int) -> None:
        # Short paths: Ray's Unix sockets live under the temp dir and socket paths are limited to 107 bytes.
        temp_dir = tempfile.mkdtemp(prefix=f"ray{i}-", dir="/tmp")
        self._dirs.append(temp_dir)
        ip = self.node_ips[i]
        cmd = [
            self._ray,
            "start",
            "--block",
            f"--node-ip-address={ip}",
            f"--num-cpus={self._cpus}",
            f"--object-store-memory={self._object_store_bytes}",
            f"--temp-dir={temp_dir}",
            f"--dashboard-agent-listen-port={free_port(ip)}",
            "--disable-usage-stats",
        ]
        if i == 0:
            cmd += [
                "--head",
                f"--port={self.port}",
                f"--ray-client-server-port={free_port(ip)}",
                "--include-dashboard=false",
            ]
        else:
            cmd.append(f"--address={self.address}")
        log_path = os.path.join(temp_dir, "ray_start.log")
        with open(log_path, "wb") as log:
            env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
            )
        self._procs.append(proc)
        deadline = time.monotonic() + self._timeout_s
        text = ""
        while time.monotonic() < deadline:
            with open(log_path, errors="replace") as f:
                text = f.read()
            if _STARTED in text:
                return
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"Ray node {ip} did not start (log {log_path}):\n{text[-3000:]}")

    def pids(self, node: int | None = None) -> list[int]:
        """Live processes of one node (or of the whole cluster): its `ray start` process group and their
        descendants (Ray's workers run in process groups of their own)."""
        nodes = range(len(self._procs)) if node is None else [node]
        groups = {self._procs[i].pid for i in nodes}
        orphans = {pid for i in nodes for pid, start in self._orphans.get(i, {}).items() if _start_time(pid) == start}
        out = subprocess.run(["ps", "-eo", "pid=,ppid=,pgid=,stat="], capture_output=True, text=True, check=True)
        table = [line.split()[:4] for line in out.stdout.splitlines()]
        parent = {int(pid): int(ppid) for pid, ppid, _, _ in table}
        members = {int(pid) for pid, _, pgid, _ in table if int(pgid) in groups or int(pid) in orphans}
        result = []
        for pid, _, _, stat in table:
            ancestor = int(pid)
            while ancestor > 1 and ancestor not in members:
                ancestor = parent.get(ancestor, 0)
            if ancestor in members and not stat.startswith("Z"):
                result.append(int(pid))
        return result

    def raylet_pid(self, node: int) -> int:
        for pid in self.pids(node):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv0 = f.read().split(b"\0")[0]
            except OSError:
                continue
            if argv0.endswith(b"/raylet"):
                return pid
        raise RuntimeError(f"node {self.node_ips[node]} has no raylet")

    def kill_node(self, node: int) -> None:
        """Loses a node as when its machine dies: SIGKILL to its raylet, then to every other process of the node.

        (Killing the raylet alone marks the node dead, but a worker already running a task may still finish it
        and hand the result to its owner before noticing; killing the workers too makes the loss certain.)
        """
        raylet = self.raylet_pid(node)
        rest = [p for p in self.pids(node) if p != raylet]
        self._orphans.setdefault(node, {}).update((p, _start_time(p)) for p in rest)
        os.kill(raylet, signal.SIGKILL)
        for pid in rest:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """Kills every process of every node (SIGKILL to their process groups), waits for them, removes temp dirs."""
        for pid in self.pids() if self._procs else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self._procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self._procs:
            proc.wait()
        deadline = time.monotonic() + 30
        while self._procs and self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        left = self.pids() if self._procs else []
        self._procs = []
        for d in self._dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._dirs = []
        if left:
            raise RuntimeError(f"Ray processes survived the cluster's stop: {left}")
