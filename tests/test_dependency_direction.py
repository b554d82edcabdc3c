"""Imports run one way: `tools`, `es` and `bench` use `rl`; `rl` imports nothing above it. Checked in fresh
interpreters, so that what other tests imported does not hide an upward import."""

import pathlib
import pkgutil
import subprocess
import sys

import compiler_opt.rl as rl

_ROOT = pathlib.Path(__file__).resolve().parent.parent
_UPWARD = ("compiler_opt.tools", "compiler_opt.es", "tests", "bench")

_IMPORT = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(",".join(sorted(m for m in sys.modules if m.startswith({upward!r}))))
"""


def _upward_imports(names):
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT.format(upward=_UPWARD), *names],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout.strip()
    return out


def test_importing_every_rl_module_loads_no_tool_es_bench_or_test_module():
    names = [m.name for m in pkgutil.walk_packages(rl.__path__, "compiler_opt.rl.")]
    # Binaries (x.py beside x_lib.py) define absl flags, so each gets an interpreter of its own.
    binaries = [n for n in names if f"{n}_lib" in names]
    libraries = [n for n in names if n not in binaries]
    assert len(libraries) >= 20 and len(binaries) >= 3, "too few modules found: the check would prove nothing"
    assert _upward_imports(libraries) == ""
    for binary in binaries:
        assert _upward_imports([binary]) == "", binary
