"""A misbehaving stand-in for clang-22, for fault-injection tests. Standard library only (it starts in ~30 ms).

Usage (through the wrapper that `injection.write_fake_clang` writes; arguments after `--` are clang's):
  python fake_compiler.py --mode=MODE --real=/usr/bin/clang-22 [--after=K] [--only=SUBSTRING] [--log=FILE] -- ARGS

A compile that is not interactive (no `-inliner-interactive-channel-base=BASE`), or whose arguments do not contain
SUBSTRING, runs the real clang unchanged. Otherwise MODE decides:
  exit_before_header  prints an error and exits with code 70 before writing anything to BASE.out.
  orphan              like exit_before_header, but first starts a child process that would run for 5 minutes.
  silent              exits 0 without writing the header.
  no_default          runs the real clang without `-mllvm -inliner-interactive-include-default`.
  crash               relays the real clang's stream for K observations, then kills clang and dies of SIGSEGV.
  stall               relays K observations, forwards the next one, then never reads the advice nor sends anything.
  garble              relays K observations, then sends a line that is not JSON and keeps the stream open.
  truncate            relays K observations, then half of the next one's tensor bytes, and exits 0.
  bad_dtype           sends the header with the first feature's type changed to `bfloat16`, then waits.
  flood               no clang: sends a one-feature header and observations forever without reading advice.
The relay runs the real clang on its own FIFOs (BASE.relay.in/.out) in the same process group.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import select
import signal
import subprocess
import sys
import time

_CHANNEL_FLAG = "-inliner-interactive-channel-base="
_INCLUDE_DEFAULT = "-inliner-interactive-include-default"
_ITEMSIZE = {"float": 4, "double": 8, "int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4,
             "uint32_t": 4, "int64_t": 8, "uint64_t": 8}  # fmt: skip
_RELAY_MODES = ("crash", "stall", "garble", "truncate", "bad_dtype")


def _nbytes(spec: dict) -> int:
    return math.prod(spec.get("shape", [1])) * _ITEMSIZE[spec["type"]]


def _hold() -> None:
    """Stays alive (with its children) until killed."""
    time.sleep(3600)
    sys.exit(1)


class _Stream:
    """Buffered reads from the real clang's `.out` FIFO; ends when clang has exited and nothing is left."""

    def __init__(self, fd: int, proc: subprocess.Popen):
        self.fd, self.proc, self.buf = fd, proc, bytearray()

    def _more(self) -> bool:
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready or self.proc.poll() is not None:
                try:
                    data = os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    if self.proc.poll() is not None:
                        return False
                    continue
                self.buf += data
                return True

    def line(self) -> bytes | None:
        while b"\n" not in self.buf:
            if not self._more():
                return None
        end = self.buf.index(b"\n") + 1
        line, self.buf = bytes(self.buf[:end]), self.buf[end:]
        return line

    def exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._more():
                return None
        data, self.buf = bytes(self.buf[:n]), self.buf[n:]
        return data


def _read_exact(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            sys.exit(3)
        data += chunk
    return data


def _exit_like(proc: subprocess.Popen) -> None:
    code = proc.wait()
    if code < 0:
        os.kill(os.getpid(), -code)
    sys.exit(code)


def _relay(real: str, args: list[str], base: str, mode: str, after: int) -> None:
    inner = base + ".relay"
    os.mkfifo(inner + ".in")
    os.mkfifo(inner + ".out")
    from_clang = os.open(inner + ".out", os.O_RDWR | os.O_NONBLOCK)
    to_clang = os.open(inner + ".in", os.O_RDWR)
    inner_args = [_CHANNEL_FLAG + inner if a.startswith(_CHANNEL_FLAG) else a for a in args]
    clang = subprocess.Popen([real, *inner_args])
    to_host = os.open(base + ".out", os.O_WRONLY)
    from_host = os.open(base + ".in", os.O_RDONLY)
    stream = _Stream(from_clang, clang)
    header_line = stream.line()
    if header_line is None:
        _exit_like(clang)
    header = json.loads(header_line)
    payload_nbytes = sum(_nbytes(f) for f in header["features"]) + 1
    advice_nbytes = _nbytes(header["advice"])
    if mode == "bad_dtype":
        header["features"][0]["type"] = "bfloat16"
        os.write(to_host, json.dumps(header).encode() + b"\n")
        _hold()
    os.write(to_host, header_line)
    seen = 0
    while (line := stream.line()) is not None:
        if "observation" not in json.loads(line):
            os.write(to_host, line)
            continue
        payload = stream.exact(payload_nbytes)
        if seen == after:
            if mode == "crash":
                clang.kill()
                clang.wait()
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
                os.kill(os.getpid(), signal.SIGSEGV)
            if mode == "stall":
                os.write(to_host, line + payload)
                _hold()
            if mode == "garble":
                os.write(to_host, b'{"observation": ' + str(seen).encode() + b", garbled\n")
                _hold()
            if mode == "truncate":
                os.write(to_host, line + payload[: len(payload) // 2])
                clang.kill()
                clang.wait()
                sys.exit(0)
        os.write(to_host, line + payload)
        os.write(to_clang, _read_exact(from_host, advice_nbytes))
        seen += 1
    os.close(to_host)
    _exit_like(clang)


def _flood(base: str) -> None:
    spec = {"name": "inlining_default", "type": "int64_t", "port": 0, "shape": [1]}
    header = {"features": [spec], "advice": dict(spec, name="inlining_decision")}
    out = os.open(base + ".out", os.O_WRONLY)
    os.write(out, json.dumps(header).encode() + b"\n")
    index = 0
    while True:
        os.write(out, json.dumps({"observation": index}).encode() + b"\n" + (1).to_bytes(8, "little") + b"\n")
        index += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--real", required=True)
    parser.add_argument("--after", type=int, default=1)
    parser.add_argument("--only", default="")
    parser.add_argument("--log", default="")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    if opts.log:
        with open(opts.log, "a") as f:
            f.write(json.dumps(args) + "\n")
    base = next((a[len(_CHANNEL_FLAG) :] for a in args if a.startswith(_CHANNEL_FLAG)), None)
    if base is None or opts.only not in " ".join(args) or opts.mode == "passthrough":
        os.execv(opts.real, [opts.real, *args])
    if opts.mode == "no_default":
        kept = [a for i, a in enumerate(args) if a != _INCLUDE_DEFAULT and args[i + 1 : i + 2] != [_INCLUDE_DEFAULT]]
        os.execv(opts.real, [opts.real, *kept])
    if opts.mode in ("exit_before_header", "orphan"):
        if opts.mode == "orphan":
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", base])
        sys.stderr.write("fake clang: internal compiler error before the header\n")
        sys.exit(70)
    if opts.mode == "silent":
        sys.exit(0)
    if opts.mode == "flood":
        _flood(base)
    if opts.mode in _RELAY_MODES:
        _relay(opts.real, args, base, opts.mode, opts.after)
    sys.exit(f"fake clang: unknown mode {opts.mode!r}")


if __name__ == "__main__":
    main()
