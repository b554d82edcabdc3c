"""Extracts an MLGO corpus from objects built with `-Xclang -fembed-bitcode=all`.

Each object's `.llvmbc` (bitcode before optimization) and `.llvmcmd` (its -cc1 arguments) sections
are dumped with llvm-objcopy into NAME.bc / NAME.cmd of the corpus (see compiler_opt/rl/corpus.py);
corpus_description.json is written last. Objects without the sections are reported and skipped.

Module names are relative paths without extension: of the object under the scanned directory, or
of the source file under the sources' common directory for a compile_commands.json.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence

import gin
from absl import logging

from compiler_opt.rl import corpus

EMBED_BITCODE_FLAGS = ("-Xclang", "-fembed-bitcode=all")
SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".c++", ".C", ".m", ".mm")
CXX_SUFFIXES = (".cc", ".cpp", ".cxx", ".c++", ".C", ".mm")
_COMPILER_WRAPPERS = ("ccache", "sccache", "distcc")
_STDERR_TAIL_CHARS = 2000


class ExtractionError(RuntimeError):
    """The input cannot be extracted at all (bad path, unreadable compile_commands.json...)."""


@dataclasses.dataclass(frozen=True)
class ObjectModule:
    """An object file and the module name it gets in the corpus."""

    obj_path: str
    name: str


@dataclasses.dataclass(frozen=True)
class Failure:
    """An input that produced no module: `path` (object or source) and why."""

    path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class ExtractionSummary:
    """What an extraction wrote to `output_dir`.

    Attributes:
      modules: names written to corpus_description.json, sorted.
      no_sections: object paths without `.llvmbc`/`.llvmcmd` (not built with embedded bitcode).
      failed: inputs whose compile (compile_commands.json) or llvm-objcopy failed.
    """

    output_dir: str
    modules: tuple[str, ...]
    no_sections: tuple[str, ...]
    failed: tuple[Failure, ...]

    def describe(self) -> str:
        return (
            f"{len(self.modules)} modules written to {self.output_dir}; "
            f"{len(self.no_sections)} objects without embedded bitcode skipped; "
            f"{len(self.failed)} failed"
        )


def find_objects(root: str, suffixes: Sequence[str] = (".o", ".obj")) -> list[str]:
    """Object files under `root` (recursively, symlinks not followed), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(suffixes))
    return found


def unique_module_names(rel_paths: Sequence[str], strip_suffixes: Sequence[str]) -> list[str]:
    """Module names for relative paths (`/`-separated), one per path, all distinct.

    Each path loses its last suffix among `strip_suffixes`, then a source suffix (`a/b.c.o` ->
    `a/b`). Different paths that would collide keep their source suffix; a repeated path gets
    `.2`, `.3`...
    """

    def strip(path: str, suffixes: Sequence[str]) -> str:
        for suffix in suffixes:
            if path.endswith(suffix) and len(path) > len(suffix):
                return path[: -len(suffix)]
        return path

    long_names = [strip(p.replace(os.sep, "/"), strip_suffixes) for p in rel_paths]
    short_names = [strip(n, SOURCE_SUFFIXES) for n in long_names]
    sharing = collections.defaultdict(set)
    for long_name, short_name in zip(long_names, short_names, strict=True):
        sharing[short_name].add(long_name)
    names, seen = [], set()
    for long_name, short_name in zip(long_names, short_names, strict=True):
        name = short_name if len(sharing[short_name]) == 1 else long_name
        base, k = name, 1
        while name in seen:
            k += 1
            name = f"{base}.{k}"
        seen.add(name)
        names.append(name)
    return names


def dump_sections(obj_path: str, bc_path: str, cmd_path: str, objcopy: str) -> str | None:
    """Dumps `.llvmbc` to `bc_path` and `.llvmcmd` to `cmd_path` (their directory must exist).

    Returns None on success, "no_sections" if the object lacks them, else llvm-objcopy's error.
    """
    argv = [
        objcopy,
        f"--dump-section=.llvmbc={bc_path}",
        f"--dump-section=.llvmcmd={cmd_path}",
        obj_path,
        os.devnull,
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
    except OSError as e:
        return f"cannot run {objcopy}: {e}"
    if proc.returncode == 0:
        return None
    for partial in (bc_path, cmd_path):
        if os.path.exists(partial):
            os.unlink(partial)
    if "section '.llvm" in proc.stderr and "not found" in proc.stderr:
        return "no_sections"
    return proc.stderr.strip()[-_STDERR_TAIL_CHARS:] or f"{objcopy} exited {proc.returncode}"


def extract_objects(
    objects: Sequence[ObjectModule],
    output_dir: str,
    *,
    objcopy: str = "llvm-objcopy-22",
    jobs: int = 1,
    failed: Sequence[Failure] = (),
) -> ExtractionSummary:
    """Writes a corpus of `objects` into `output_dir` (created; must be empty if it exists).

    `failed` lists earlier failures (e.g. compiles) to carry into the summary.
    """
    _prepare_output_dir(output_dir)
    names = [o.name for o in objects]
    if len(set(names)) != len(names):
        raise ExtractionError("module names must be unique; use unique_module_names")

    staging = tempfile.mkdtemp(dir=output_dir, prefix=".staging-")

    def one(indexed: tuple[int, ObjectModule]) -> str | None:
        index, obj = indexed
        staged_bc = os.path.join(staging, f"{index}.bc")
        staged_cmd = os.path.join(staging, f"{index}.cmd")
        error = dump_sections(obj.obj_path, staged_bc, staged_cmd, objcopy)
        if error is None:
            bc_path, cmd_path = corpus.module_files(output_dir, obj.name)
            os.makedirs(os.path.dirname(bc_path), exist_ok=True)
            os.replace(staged_bc, bc_path)
            os.replace(staged_cmd, cmd_path)
        return error

    try:
        results = parallel_map(one, list(enumerate(objects)), jobs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    modules, no_sections, failures = [], [], list(failed)
    for obj, error in zip(objects, results, strict=True):
        if error is None:
            modules.append(obj.name)
        elif error == "no_sections":
            logging.warning(
                "%s has no .llvmbc/.llvmcmd sections (build it with -Xclang -fembed-bitcode=all); skipped",
                obj.obj_path,
            )
            no_sections.append(obj.obj_path)
        else:
            logging.warning("%s: llvm-objcopy failed, skipped: %s", obj.obj_path, error)
            failures.append(Failure(obj.obj_path, error))
    modules.sort()
    if modules:
        corpus.write_corpus_description(output_dir, modules)
    else:
        logging.error("no module extracted: %s has no corpus_description.json", output_dir)
    summary = ExtractionSummary(output_dir, tuple(modules), tuple(no_sections), tuple(failures))
    logging.info("%s", summary.describe())
    return summary


@gin.configurable(module="extract_corpus")
def extract_from_directory(
    obj_dir: str,
    output_dir: str,
    *,
    objcopy: str = "llvm-objcopy-22",
    jobs: int = 1,
    object_suffixes: Sequence[str] = (".o", ".obj"),
) -> ExtractionSummary:
    """Extracts every object under `obj_dir`; names are object paths relative to `obj_dir`."""
    if not os.path.isdir(obj_dir):
        raise ExtractionError(f"{obj_dir} is not a directory: pass the build's object directory")
    objects = find_objects(obj_dir, tuple(object_suffixes))
    rel_paths = [os.path.relpath(p, obj_dir) for p in objects]
    names = unique_module_names(rel_paths, tuple(object_suffixes))
    return extract_objects(
        [ObjectModule(p, n) for p, n in zip(objects, names, strict=True)],
        output_dir,
        objcopy=objcopy,
        jobs=jobs,
    )


@dataclasses.dataclass(frozen=True)
class CompileCommand:
    """One entry of compile_commands.json: arguments (argv[0] = compiler), cwd, source (absolute)."""

    directory: str
    arguments: tuple[str, ...]
    source: str


def read_compile_commands(path: str) -> list[CompileCommand]:
    """Parses a compile_commands.json (entries with `arguments` or a shell `command`)."""
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ExtractionError(
            f"cannot read {path} ({e}): pass a compile_commands.json "
            "(CMake: -DCMAKE_EXPORT_COMPILE_COMMANDS=ON; make: bear -- make)"
        ) from e
    if not isinstance(entries, list):
        raise ExtractionError(f"{path} must hold a JSON list of compile commands")
    commands = []
    for i, entry in enumerate(entries):
        try:
            directory = entry["directory"]
            arguments = entry.get("arguments") or shlex.split(entry["command"])
            source = os.path.normpath(os.path.join(directory, entry["file"]))
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ExtractionError(
                f"{path}: entry {i} needs 'directory', 'file' and 'arguments' or 'command' ({e})"
            ) from e
        commands.append(CompileCommand(directory, tuple(arguments), source))
    return commands


def embed_bitcode_argv(command: CompileCommand, obj_path: str, clang: str, clangxx: str) -> list[str]:
    """The command rebuilt to compile to `obj_path` with embedded bitcode, using clang-22.

    The compiler (after any ccache-like wrapper) becomes `clangxx` for C++ (a `++` compiler or a
    C++ source suffix), else `clang`. Output, dependency-file, LTO and bitcode-embedding options
    are dropped; `-Xclang -fembed-bitcode=all -c -o obj_path` are added.
    """
    args = list(command.arguments)
    while args and os.path.basename(args[0]) in _COMPILER_WRAPPERS:
        args.pop(0)
    compiler, rest = (args[0], args[1:]) if args else ("", [])
    is_cxx = "++" in os.path.basename(compiler) or command.source.endswith(CXX_SUFFIXES)
    kept, i = [], 0
    while i < len(rest):
        arg = rest[i]
        if arg in ("-o", "-MF", "-MT", "-MQ") or (
            arg == "-Xclang" and i + 1 < len(rest) and rest[i + 1].startswith("-fembed-bitcode")
        ):
            i += 2
            continue
        if arg in ("-c", "-S", "-E", "-MD", "-MMD", "-MP", "-M", "-MM") or arg.startswith(
            ("-MF", "-MT", "-MQ", "-flto", "-fembed-bitcode")
        ):
            i += 1
            continue
        kept.append(arg)
        i += 1
    return [clangxx if is_cxx else clang, *kept, *EMBED_BITCODE_FLAGS, "-c", "-o", obj_path]


@gin.configurable(module="extract_corpus")
def extract_from_compile_commands(
    compile_commands: str,
    output_dir: str,
    *,
    clang: str = "clang-22",
    clangxx: str = "clang++-22",
    objcopy: str = "llvm-objcopy-22",
    jobs: int = 1,
    compile_timeout_s: float = 600.0,
) -> ExtractionSummary:
    """Re-runs each command of `compile_commands` with embedded bitcode, then extracts the objects.

    Objects go to a temporary directory; a failed compile is reported and skipped.
    """
    commands = read_compile_commands(compile_commands)
    if not commands:
        raise ExtractionError(f"{compile_commands} lists no compile commands")
    root = os.path.commonpath([os.path.dirname(c.source) for c in commands])
    names = unique_module_names([os.path.relpath(c.source, root) for c in commands], ())
    _prepare_output_dir(output_dir)
    with tempfile.TemporaryDirectory(prefix="extract_corpus_") as obj_dir:
        jobs_list = [
            (c, n, os.path.join(obj_dir, f"{i}.o")) for i, (c, n) in enumerate(zip(commands, names, strict=True))
        ]

        def one(job) -> str | None:
            command, _, obj_path = job
            argv = embed_bitcode_argv(command, obj_path, clang, clangxx)
            return run_compile(argv, command.directory, compile_timeout_s)

        errors = parallel_map(one, jobs_list, jobs)
        objects, failures = [], []
        for (command, name, obj_path), error in zip(jobs_list, errors, strict=True):
            if error is None:
                objects.append(ObjectModule(obj_path, name))
            else:
                logging.warning("compile of %s failed, skipped: %s", command.source, error)
                failures.append(Failure(command.source, error))
        return extract_objects(objects, output_dir, objcopy=objcopy, jobs=jobs, failed=failures)


def run_compile(argv: Sequence[str], cwd: str, timeout_s: float) -> str | None:
    """Runs one compile; returns None on success, else the reason with clang's stderr tail."""
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout_s} s: {shlex.join(argv)}"
    except OSError as e:
        return f"cannot run {argv[0]}: {e}"
    if proc.returncode != 0:
        return f"exit {proc.returncode}: {proc.stderr.strip()[-_STDERR_TAIL_CHARS:]}"
    return None


def parallel_map(fn: Callable, items: Iterable, jobs: int) -> list:
    """[fn(item) for item in items], computed by `jobs` threads (fn should run subprocesses)."""
    items = list(items)
    if jobs <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(fn, items))


def _prepare_output_dir(output_dir: str) -> None:
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        raise ExtractionError(f"{output_dir} is not empty: choose a new --output_dir or delete the old one")
    os.makedirs(output_dir, exist_ok=True)
