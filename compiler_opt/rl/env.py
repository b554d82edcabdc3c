"""One compile of one module under a policy, speaking clang's MLGO interactive protocol.

`compile_module(module, policy)` starts clang on the module's command with the ML inliner in interactive mode,
answers every inlining decision with `policy`, and scores the object (`llvm-size` text column). Each compile runs in
its own temporary directory (FIFOs, object, stderr) and process group; both are removed whatever happens: a clang that
crashes, exits early, or stops talking past the timeout is killed and reaped, and the result says why.

The policy interface (see `compiler_opt.rl.policies`): `policy.extra_args` (compiler flags the policy needs),
`policy.name`, and `policy.new_episode(header) -> decide`, where `decide(observation) -> int`. `new_episode` may raise
`FeatureMismatchError` when the compiler does not send what the policy needs; that error stops the caller (it is
systematic, not a per-module failure).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Protocol

import numpy as np
from absl import logging

from compiler_opt.rl import protocol
from compiler_opt.rl.inlining import task as task_lib

OK = "ok"
FAILED = "failed"
TIMEOUT = "timeout"

_STDERR_EXCERPT = 2000  # bytes read from each end of a failed compile's stderr
# How often a wait for the compiler wakes to check whether it is still alive.
_POLL_SLICE_S = 0.05


_TMP_PREFIX = "bcmax-compile-"


# Exit status of a compiler command whose host was gone before the death signal was set (nobody reads it).
HOST_GONE_EXIT = 125
# Run by sh between setpriv and the compiler: $1 is the host's pid, the rest the compiler's command.
_HOST_CHECK = 'if [ "$PPID" != "$1" ]; then exit %d; fi; shift; exec "$@"' % HOST_GONE_EXIT


@functools.cache
def _setpriv_and_sh() -> tuple[str, str] | None:
    """(setpriv, sh) paths for `_die_with_host`, or None (with a warning) when either is missing."""
    setpriv = shutil.which("setpriv") or shutil.which("setpriv", path=os.defpath)
    sh = shutil.which("sh", path=os.defpath) or shutil.which("sh")
    if setpriv is None or sh is None:
        logging.warning(
            "setpriv (Debian package util-linux) or sh was not found: a compiler will outlive this process if it is "
            "killed"
        )
        return None
    return setpriv, sh


def _die_with_host(host_pid: int | None = None) -> tuple[str, ...]:
    """The command prefix that makes a compiler die with the process that started it (`host_pid`, default this one):
    util-linux's `setpriv --pdeathsig KILL --` sets PR_SET_PDEATHSIG and execs sh, which execs the compiler only if
    its parent is still the host (same pid, same process group throughout).

    The parent check closes the race of a host that dies after fork() and before setpriv has set the signal: such a
    compiler would be orphaned with no death signal, and an interactive one blocks forever opening its channel (a FIFO
    whose other end nobody will open). sh runs after the signal is set: if the host dies later the kernel kills the
    compiler; if it died before, sh's parent is no longer the host and it exits with HOST_GONE_EXIT.

    Why not `preexec_fn` (ctypes `prctl` in the forked child): Python runs it between fork and exec, which can deadlock
    in a process with threads (ours have executor, TF and Ray threads; Python warns about it), and it forces a full
    fork() of a large process. Why not only `start_new_session` plus a kill in `finally`: a host killed with SIGKILL
    runs no cleanup. The death signal follows the thread that started the compiler; `compile_*` waits for the
    compiler on that thread, so it is alive as long as the compile is.

    setpriv is looked up on PATH, then on the system's default path; sh on the default path first (tests and users
    narrow PATH to the LLVM tools).
    """
    tools = _setpriv_and_sh()
    if tools is None:
        return ()
    setpriv, sh = tools
    host = os.getpid() if host_pid is None else host_pid
    return (setpriv, "--pdeathsig", "KILL", "--", sh, "-c", _HOST_CHECK, "bcmax-compile", str(host))


def _make_tmpdir(tmp_root: str | None) -> str:
    """A private directory named after this process, so that `remove_stale_tmpdirs` can tell when it is orphaned."""
    return tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=tmp_root)


def remove_stale_tmpdirs(tmp_root: str | None = None) -> int:
    """Removes compile directories left by processes that were killed (their pid no longer exists). Returns count."""
    root = tmp_root or tempfile.gettempdir()
    removed = 0
    for name in os.listdir(root):
        if not name.startswith(_TMP_PREFIX):
            continue
        pid = name[len(_TMP_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed += 1
    return removed


class FeatureMismatchError(Exception):
    """The policy needs features the compiler does not send (or of another type)."""


class Module(Protocol):
    name: str

    def command(self, clang: str, obj_path: str, extra_args: tuple[str, ...] = ()) -> list[str]: ...


class Policy(Protocol):
    name: str
    extra_args: tuple[str, ...]

    def new_episode(self, header: protocol.Header): ...


@dataclasses.dataclass(frozen=True)
class CompileResult:
    """Outcome of one compile.

    status: "ok", "failed" or "timeout". text_size / text_section_size: bytes (None unless ok).
    actions: int8 [T], the decisions played. features: name -> array [T, *shape] in the compiler's dtypes.
    seconds: wall time of the whole compile including scoring; compile_seconds: until clang exited (None if it failed).
    error: reason (with clang's stderr tail) if not ok.
    """

    module: str
    policy: str
    status: str
    text_size: int | None
    text_section_size: int | None
    actions: np.ndarray
    features: dict[str, np.ndarray]
    seconds: float
    error: str = ""
    compile_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def horizon(self) -> int:
        return len(self.actions)


class _CompileFailure(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status


def compile_module(
    module: Module,
    policy: Policy,
    *,
    task: task_lib.InliningForSizeTask | None = None,
    extra_args: tuple[str, ...] = (),
    timeout_s: float = 600.0,
    tmp_root: str | None = None,
    keep_object: str | None = None,
) -> CompileResult:
    """Compiles `module` with every inlining decision taken by `policy`. Never raises for a failed compile.

    keep_object: if set, the object file is copied there (for tests and evaluation tools).
    Raises FeatureMismatchError (policy and compiler disagree on features) and task_lib.ToolError (clang missing).
    """
    task = task or task_lib.InliningForSizeTask()
    start = time.monotonic()
    deadline = start + timeout_s
    tmpdir = _make_tmpdir(tmp_root)
    actions: list[int] = []
    payloads: list[bytes] = []
    header = None
    proc = None
    fds: list[int] = []
    try:
        base = os.path.join(tmpdir, "channel")
        os.mkfifo(base + ".in")
        os.mkfifo(base + ".out")
        # Holding both ends of `.in` and a non-blocking reader on `.out` lets clang open both without waiting,
        # in whatever order, and never blocks us if clang dies before opening them.
        fds.append(in_fd := os.open(base + ".in", os.O_RDWR | os.O_NONBLOCK))
        fds.append(out_fd := os.open(base + ".out", os.O_RDONLY | os.O_NONBLOCK))
        obj_path = os.path.join(tmpdir, "module.o")
        cmd = module.command(
            task.clang,
            obj_path,
            extra_args=(*task.interactive_args(base), *policy.extra_args, *extra_args),
        )
        proc = _start_compiler(cmd, tmpdir, task)
        try:
            header = _play(proc, in_fd, out_fd, policy, actions, payloads, deadline)
            returncode = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            compile_seconds = time.monotonic() - start
        except subprocess.TimeoutExpired:
            raise _CompileFailure(TIMEOUT, f"compile exceeded the {timeout_s:g} s timeout") from None
        except protocol.ProtocolError as e:
            raise _CompileFailure(FAILED, f"protocol error: {e}") from None
        if returncode != 0:
            raise _CompileFailure(FAILED, f"clang exited with {_describe_returncode(returncode)}")
        if header is None:
            raise _CompileFailure(
                FAILED,
                "clang never sent the interactive-mode header (is it clang >= 22 built with MLGO support?)",
            )
        try:
            score = task.score(obj_path)
        except task_lib.ObjectError as e:
            raise _CompileFailure(FAILED, f"clang exited 0 but its object cannot be measured: {e}") from None
        if keep_object:
            shutil.copyfile(obj_path, keep_object)
        return CompileResult(
            module=module.name,
            policy=policy.name,
            status=OK,
            text_size=score.text_size,
            text_section_size=score.text_section_size,
            actions=np.asarray(actions, dtype=np.int8),
            features=_stack_features(header, payloads),
            seconds=time.monotonic() - start,
            compile_seconds=compile_seconds,
        )
    except _CompileFailure as failure:
        _kill(proc)
        return _failed(module, policy.name, failure.status, str(failure), start, tmpdir, actions)
    finally:
        _kill(proc)
        for fd in fds:
            os.close(fd)
        shutil.rmtree(tmpdir, ignore_errors=True)


def compile_plain(
    module: Module,
    *,
    task: task_lib.InliningForSizeTask | None = None,
    extra_args: tuple[str, ...] = (),
    timeout_s: float = 600.0,
    tmp_root: str | None = None,
    keep_object: str | None = None,
) -> CompileResult:
    """Compiles `module` with its own command and no host (stock clang: the -Oz reference). Never raises for a failed
    compile. `actions` and `features` are empty: the compiler decides alone."""
    task = task or task_lib.InliningForSizeTask()
    start = time.monotonic()
    tmpdir = _make_tmpdir(tmp_root)
    proc = None
    try:
        obj_path = os.path.join(tmpdir, "module.o")
        proc = _start_compiler(module.command(task.clang, obj_path, extra_args=tuple(extra_args)), tmpdir, task)
        try:
            returncode = proc.wait(timeout=timeout_s)
            compile_seconds = time.monotonic() - start
        except subprocess.TimeoutExpired:
            return _failed(module, "stock", TIMEOUT, f"compile exceeded the {timeout_s:g} s timeout", start, tmpdir)
        if returncode != 0:
            reason = f"clang exited with {_describe_returncode(returncode)}"
            return _failed(module, "stock", FAILED, reason, start, tmpdir)
        try:
            score = task.score(obj_path)
        except task_lib.ObjectError as e:
            reason = f"clang exited 0 but its object cannot be measured: {e}"
            return _failed(module, "stock", FAILED, reason, start, tmpdir)
        if keep_object:
            shutil.copyfile(obj_path, keep_object)
        return CompileResult(
            module=module.name,
            policy="stock",
            status=OK,
            text_size=score.text_size,
            text_section_size=score.text_section_size,
            actions=np.zeros(0, dtype=np.int8),
            features={},
            seconds=time.monotonic() - start,
            compile_seconds=compile_seconds,
        )
    finally:
        _kill(proc)
        shutil.rmtree(tmpdir, ignore_errors=True)


def _start_compiler(cmd: list[str], tmpdir: str, task: task_lib.InliningForSizeTask) -> subprocess.Popen:
    """Starts the compiler in `tmpdir`, in its own process group, stderr to tmpdir/stderr; it dies with us
    (`_die_with_host`). Raises task_lib.ToolError when the compiler is not installed."""
    compiler = task_lib.find_tool(cmd[0])
    with open(os.path.join(tmpdir, "stderr"), "wb") as stderr_file:
        return subprocess.Popen(
            [*_die_with_host(), compiler, *cmd[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
            start_new_session=True,
            cwd=tmpdir,
        )


def _full_disk_note(tmpdir: str) -> str:
    """Why a compile may have failed without a word from clang: its directory's file system is full (clang's stderr
    could not be written either)."""
    try:
        stat = os.statvfs(tmpdir)
    except OSError:
        return ""
    if stat.f_bavail * stat.f_frsize >= 1 << 20:
        return ""
    return f" (No space left on device in {os.path.dirname(tmpdir)}: free some space, or set TMPDIR elsewhere)"


def _failed(module, policy_name, status, reason, start, tmpdir, actions=()) -> CompileResult:
    reason += _full_disk_note(tmpdir)
    return CompileResult(
        module=module.name,
        policy=policy_name,
        status=status,
        text_size=None,
        text_section_size=None,
        actions=np.asarray(actions, dtype=np.int8),
        features={},
        seconds=time.monotonic() - start,
        error=clip_error(f"{reason}\n{_stderr_excerpt(os.path.join(tmpdir, 'stderr'))}".strip()),
    )


def _play(proc, in_fd, out_fd, policy, actions, payloads, deadline) -> protocol.Header | None:
    """Answers observations until clang closes its end. Returns the header (None if clang never sent one)."""
    decoder = protocol.StreamDecoder()
    decide = None
    while True:
        msg = decoder.next_message()
        if msg is None:
            data = _read_some(proc, out_fd, deadline)
            if not data:
                decoder.finish()
                return decoder.header
            decoder.feed(data)
        elif isinstance(msg, protocol.Observation):
            try:
                action = int(decide(msg))
            except FeatureMismatchError:
                raise
            except Exception as e:  # noqa: BLE001 - a policy bug fails this compile with its message.
                raise _CompileFailure(FAILED, f"policy {policy.name!r} failed at step {len(actions)}: {e!r}") from e
            _write_all(proc, in_fd, msg.header.encode_advice(action), deadline)
            actions.append(action)
            payloads.append(msg.payload)
        elif isinstance(msg, protocol.Header):
            decide = policy.new_episode(msg)


def _read_some(proc, fd, deadline) -> bytes:
    """Next bytes from clang; b"" once clang has closed the stream or exited. Raises on timeout."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise subprocess.TimeoutExpired(proc.args, 0)
        ready, _, _ = select.select([fd], [], [], min(remaining, _POLL_SLICE_S))
        if ready:
            try:
                return os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
        if proc.poll() is not None:
            try:
                return os.read(fd, 1 << 16)
            except BlockingIOError:
                return b""


def _write_all(proc, fd, data: bytes, deadline) -> None:
    """Writes the advice; a compiler that stops reading it (a full pipe) counts against the timeout."""
    while data:
        try:
            data = data[os.write(fd, data) :]
        except BlockingIOError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0) from None
            select.select([], [fd], [], min(remaining, _POLL_SLICE_S))


def _stack_features(header: protocol.Header, payloads: list[bytes]) -> dict[str, np.ndarray]:
    n = header.observation_nbytes
    blob = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), n)
    result = {}
    for offset, spec in header.offsets.values():
        column = np.ascontiguousarray(blob[:, offset : offset + spec.nbytes])
        result[spec.name] = column.view(spec.dtype).reshape((len(payloads), *spec.shape))
    return result


def _kill(proc) -> None:
    """Kills the compiler's whole process group, also when the compiler itself has exited and left children."""
    if proc is None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _describe_returncode(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


ERROR_LIMIT = 2000  # characters of a compile's error kept in records, profiles and reports


def clip_error(text: str, limit: int = ERROR_LIMIT) -> str:
    """`text` cut to at most `limit` characters: its first half (the reason, such as "clang exited with exit code 1",
    then the tool's first diagnostics) and its last (the tool's last lines), the cut marked by a "..." line. Long
    stderr never hides the reason or the first error."""
    if len(text) <= limit:
        return text
    marker = "\n...\n"
    head = text[: (limit - len(marker)) // 2]
    tail = text[len(text) - (limit - len(marker) - len(head)) :]
    return head + marker + tail


def _stderr_excerpt(path: str) -> str:
    """The beginning and the end of a stderr file (its first diagnostics and its last lines), "..." between them."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(0)
            if size <= 2 * _STDERR_EXCERPT:
                return f.read().decode(errors="replace").strip()
            head = f.read(_STDERR_EXCERPT)
            f.seek(size - _STDERR_EXCERPT)
            tail = f.read()
    except OSError:
        return ""
    return f"{head.decode(errors='replace')}\n...\n{tail.decode(errors='replace')}".strip()
