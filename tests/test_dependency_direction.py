"""Imports run one way: `tools`, `es` and `bench` use `rl`; `rl` imports nothing above it. Checked in fresh
interpreters, so that what other tests imported does not hide an upward import."""

import ast
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


def _test_references(source: str) -> list[str]:
    """Imports of `tests` (or `tests.*`) in `source`, and string constants naming a `tests.` module (`-m tests.x`,
    runpy, importlib)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == "tests" or a.name.startswith("tests.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tests" or node.module.startswith("tests."):
                found.append(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("tests."):
            found.append(node.value)
    return found


def test_the_bench_reference_check_sees_every_form_of_import():
    source = "import tests.x\nfrom tests import y\nfrom tests.faults import z\nrun(['-m', 'tests.faults.crash_at'])\n"
    assert _test_references(source) == ["tests.x", "tests", "tests.faults", "tests.faults.crash_at"]
    assert _test_references("import testsuite\nfrom .tests import x\nprint('tests pass')\n") == []


def test_no_bench_file_imports_or_runs_a_test_module():
    files = sorted((_ROOT / "bench").rglob("*.py"))
    assert len(files) >= 8, "too few bench files found: the check would prove nothing"
    offending = {str(f.relative_to(_ROOT)): refs for f in files if (refs := _test_references(f.read_text()))}
    assert offending == {}
