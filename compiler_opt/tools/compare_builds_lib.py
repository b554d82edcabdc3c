"""Builds a program twice, with stock clang-22 -Oz and with the exported inliner plugin, links both the same way,
and compares the linked programs: file size (unstripped and stripped), each loaded section, and a smoke test.

A program is a `Project`: a source tree and a shell build command (its own build system: CMake, make, ...). Each
variant is built from a fresh copy of the tree at the same path, with `CC`/`CXX` pointing at a compiler wrapper that
runs clang-22/clang++-22 and appends the variant's flags to every command:

  compile (`-c`): `-Oz -ffunction-sections -fdata-sections`, plus `-fpass-plugin=libbcmax_inliner.so` for the plugin
  link:           `-Wl,--gc-sections`

so the one difference between the two builds is the plugin flag (appended last, `-Oz` overrides the build's own
`-O`). The wrapper also records every compile (working directory and final arguments, as `bear` would) into the
variant's `compile_commands.json`, from which the stock build's corpus is made with extract_corpus's
`--compile_commands` route. The program is then copied out and stripped (`llvm-objcopy --strip-all`); sizes are in
bytes. A project given as a compile_commands.json instead of a build command is built by re-running its commands
through the same wrapper and linking every object into one program.

A smoke test is a shell command run in an empty directory with `PROGRAM` (the linked program, absolute path) and
`DATA` (the project's `data_dir`) in its environment; exit status 0 is a pass. A comparison whose builds fail, or
whose smoke test fails on either build, is a failure and reports no sizes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shlex
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Sequence

import gin
from absl import logging

from compiler_opt import console
from compiler_opt.rl import extract_corpus_lib

_OUTPUT_TAIL_CHARS = 3000
_SHF_ALLOC = 0x2
_SHT_NOBITS = 8
STOCK, PLUGIN = "stock", "plugin"


class CompareError(RuntimeError):
    """The comparison cannot run at all (bad project, missing tool); the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class Project:
    """A program to build both ways.

    Attributes:
      name: label in tables and JSON.
      source_dir: the source tree; copied (never modified) before each build.
      build_command: shell command run in the copied tree (`CC`, `CXX` are the wrapper); it must build `binary`.
        Empty: build from `compile_commands` instead.
      binary: path of the linked program, relative to the copied tree.
      smoke_test: shell command (see the module docstring); "" runs none and counts as a failure.
      data_dir: exported to the smoke test as `DATA` (default: the source tree).
      compile_commands: a compile_commands.json to build from when `build_command` is empty; its objects are linked
        into `binary` with `link_args` (e.g. `-lm`).
      link_args: libraries and options for that link.
    """

    name: str
    source_dir: str
    build_command: str
    binary: str
    smoke_test: str
    data_dir: str = ""
    compile_commands: str = ""
    link_args: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SmokeResult:
    """Outcome of a smoke test: `passed`, exit `returncode` (None on timeout), output tail, seconds."""

    passed: bool
    returncode: int | None
    output: str
    seconds: float


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """One variant's build.

    Attributes:
      variant: "stock" or "plugin".
      ok: the build command succeeded and produced the program.
      error: why not (build output tail) when not ok.
      binary: the linked program copied out of the tree ("" if none); `stripped` its stripped copy.
      file_bytes, stripped_bytes: file sizes.
      sections: loaded (SHF_ALLOC) sections of the unstripped program, name -> size in bytes.
      object_text_bytes: sum of the llvm-size text column over the build's objects.
      objects: number of objects compiled.
      cpu_seconds: user + system time of the build's processes; wall_seconds: elapsed time.
      compile_commands: the recorded compile_commands.json of this build.
      smoke: the smoke test's result (None if the build failed).
    """

    variant: str
    ok: bool
    error: str
    binary: str
    stripped: str
    file_bytes: int
    stripped_bytes: int
    sections: dict[str, int]
    object_text_bytes: int
    objects: int
    cpu_seconds: float
    wall_seconds: float
    compile_commands: str
    smoke: SmokeResult | None

    @property
    def loaded_bytes(self) -> int:
        return sum(self.sections.values())

    @property
    def passed(self) -> bool:
        return self.ok and self.smoke is not None and self.smoke.passed


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Stock and plugin builds of one project. `ok`: both built and passed their smoke test."""

    project: str
    stock: BuildResult
    plugin: BuildResult

    @property
    def ok(self) -> bool:
        return self.stock.passed and self.plugin.passed

    @property
    def failure(self) -> str:
        """Why the comparison failed ("" if it did not)."""
        reasons = []
        for build in (self.stock, self.plugin):
            if not build.ok:
                reasons.append(f"{build.variant} build failed")
            elif not build.passed:
                reasons.append(f"{build.variant} build FAILED its smoke test")
        return "; ".join(reasons)

    def ratio(self, field: str) -> float | None:
        """plugin / stock of a BuildResult size field ("file_bytes", "loaded_bytes", ...); None if not ok."""
        if not self.ok:
            return None
        stock = getattr(self.stock, field)
        return getattr(self.plugin, field) / stock if stock else None

    def to_json(self) -> dict:
        """JSON-ready summary (sizes only when ok)."""

        def build(b: BuildResult) -> dict:
            d = {
                "built": b.ok,
                "smoke_test_passed": b.passed,
                "build_cpu_seconds": round(b.cpu_seconds, 2),
                "build_wall_seconds": round(b.wall_seconds, 2),
                "objects": b.objects,
            }
            if b.smoke is not None:
                d["smoke_test_seconds"] = round(b.smoke.seconds, 2)
                if not b.smoke.passed:
                    d["smoke_test_output"] = b.smoke.output[-600:]
            if not b.ok:
                d["error"] = b.error[-600:]
            if self.ok:
                d.update(
                    unstripped_bytes=b.file_bytes,
                    stripped_bytes=b.stripped_bytes,
                    loaded_bytes=b.loaded_bytes,
                    sections=b.sections,
                    object_text_bytes=b.object_text_bytes,
                )
            return d

        out = {"program": self.project, "ok": self.ok, "stock": build(self.stock), "plugin": build(self.plugin)}
        if self.ok:
            out["ratios"] = {
                "object_text": _round(self.ratio("object_text_bytes")),
                "linked_unstripped": _round(self.ratio("file_bytes")),
                "linked_stripped": _round(self.ratio("stripped_bytes")),
                "linked_loaded": _round(self.ratio("loaded_bytes")),
            }
        else:
            out["failure"] = self.failure
        return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


@gin.configurable(module="compare_builds")
@dataclasses.dataclass(frozen=True)
class BuildFlags:
    """What the wrapper appends. Placeholder `{plugin}`: the plugin's absolute path.

    Attributes:
      compile_flags: appended to every compile of both variants (size build, one section per function and object so
        that the linker can drop unused ones).
      link_flags: appended to every link of both variants.
      plugin_flags: appended to every compile of the plugin variant only.
      clang, clangxx: the compilers the wrapper runs.
    """

    compile_flags: tuple[str, ...] = ("-Oz", "-ffunction-sections", "-fdata-sections")
    link_flags: tuple[str, ...] = ("-Wl,--gc-sections",)
    plugin_flags: tuple[str, ...] = ("-fpass-plugin={plugin}",)
    clang: str = "clang-22"
    clangxx: str = "clang++-22"

    def compile_for(self, variant: str, plugin: str) -> tuple[str, ...]:
        extra = tuple(f.format(plugin=plugin) for f in self.plugin_flags) if variant == PLUGIN else ()
        return (*self.compile_flags, *extra)


# Appends the variant's flags; records each compile as NUL-separated cwd, argv into its own file (parallel-safe).
_WRAPPER = """#!/bin/bash
mode=link
for a in "$@"; do
  case "$a" in
    -c) mode=compile ;;
    -E|-S|-M|-MM|-fsyntax-only) mode=other; break ;;
  esac
done
case $mode in
  compile)
    set -- "$@" {compile_flags}
    rec=$(mktemp {records}/XXXXXXXX.rec)
    printf '%s\\0' "$PWD" {compiler} "$@" > "$rec"
    exec {compiler} "$@" ;;
  link) exec {compiler} "$@" {link_flags} ;;
  *) exec {compiler} "$@" ;;
esac
"""


def write_wrappers(bin_dir: str, records_dir: str, flags: BuildFlags, variant: str, plugin: str) -> tuple[str, str]:
    """Writes the `cc` and `c++` wrappers into `bin_dir`; returns their paths."""
    os.makedirs(bin_dir, exist_ok=True)
    os.makedirs(records_dir, exist_ok=True)
    paths = []
    for name, compiler in (("cc", flags.clang), ("c++", flags.clangxx)):
        resolved = shutil.which(compiler)
        if resolved is None:
            raise CompareError(f"{compiler} not found on PATH: install Debian clang-22 (`make setup`)")
        text = _WRAPPER.format(
            compile_flags=shlex.join(flags.compile_for(variant, plugin)),
            link_flags=shlex.join(flags.link_flags),
            compiler=shlex.quote(resolved),
            records=shlex.quote(records_dir),
        )
        path = os.path.join(bin_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, 0o755)
        paths.append(path)
    return paths[0], paths[1]


def _source_and_output(args: Sequence[str], cwd: str) -> tuple[str, str]:
    source, output, i = "", "", 0
    while i < len(args):
        arg = args[i]
        if arg == "-o" and i + 1 < len(args):
            output = args[i + 1]
            i += 2
            continue
        if arg.startswith("-o") and len(arg) > 2:
            output = arg[2:]
        elif not arg.startswith("-") and arg.endswith(extract_corpus_lib.SOURCE_SUFFIXES):
            source = arg
        i += 1
    return (os.path.normpath(os.path.join(cwd, source)) if source else "", os.path.normpath(os.path.join(cwd, output)))


def collect_compile_commands(records_dir: str, output_path: str) -> list[str]:
    """Writes the recorded compiles whose source and object still exist as compile_commands.json (CMake's probes
    compile in scratch directories it deletes).

    Returns the objects those compiles wrote, sorted.
    """
    entries, objects = [], []
    for name in sorted(os.listdir(records_dir)):
        with open(os.path.join(records_dir, name), "rb") as f:
            fields = f.read().decode("utf-8", "surrogateescape").split("\0")[:-1]
        if len(fields) < 2:
            continue
        cwd, argv = fields[0], fields[1:]
        source, output = _source_and_output(argv[1:], cwd)
        if not source or not os.path.isfile(source) or not os.path.isfile(output):
            continue
        entries.append({"directory": cwd, "arguments": argv, "file": source, "output": output})
        objects.append(output)
    entries.sort(key=lambda e: (e["file"], e["output"]))
    with open(output_path, "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=1)
    return sorted(objects)


def elf_sections(path: str) -> dict[str, int]:
    """Loaded (SHF_ALLOC) sections of an ELF64 little-endian file: name -> size in bytes (.bss included)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise CompareError(f"{path} is not a little-endian ELF64 file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = headers[shstrndx][4]
    sections: dict[str, int] = {}
    for name_off, _type, flags, _addr, _off, size, *_ in headers:
        if flags & _SHF_ALLOC and size:
            end = data.index(b"\0", strtab_off + name_off)
            name = data[strtab_off + name_off : end].decode()
            sections[name] = sections.get(name, 0) + size
    return sections


def object_text_bytes(objects: Sequence[str], llvm_size: str = "llvm-size-22") -> int:
    """Sum of the llvm-size (Berkeley) text column over `objects`."""
    total = 0
    for start in range(0, len(objects), 200):
        out = subprocess.run(
            [llvm_size, *objects[start : start + 200]], capture_output=True, text=True, check=True
        ).stdout
        for line in out.splitlines()[1:]:
            if line.strip():
                total += int(line.split()[0])
    return total


def run_smoke_test(command: str, program: str, data_dir: str, timeout_s: float) -> SmokeResult:
    """Runs `command` with bash in a new empty directory (see the module docstring)."""
    env = dict(os.environ, PROGRAM=os.path.abspath(program), DATA=os.path.abspath(data_dir))
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bcmax-smoke-") as cwd:
        try:
            proc = subprocess.run(
                ["bash", "-eo", "pipefail", "-c", command],
                cwd=cwd,
                env=env,
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return SmokeResult(False, None, f"timed out after {timeout_s} s", time.monotonic() - start)
    output = (proc.stdout + proc.stderr).decode("utf-8", "replace")[-_OUTPUT_TAIL_CHARS:]
    passed = proc.returncode == 0 and bool(command.strip())
    return SmokeResult(passed, proc.returncode, output, time.monotonic() - start)


def _run_timed(argv, cwd: str, env: dict, timeout_s: float) -> tuple[int | None, str, float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout_s, check=False
        )
        code, output = proc.returncode, proc.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        code, output = None, f"timed out after {timeout_s} s\n" + (e.stdout or b"").decode("utf-8", "replace")
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return code, output[-_OUTPUT_TAIL_CHARS:], cpu, wall


def _build_from_compile_commands(project: Project, tree: str, cc: str, cxx: str) -> str:
    """A shell script that re-runs every command of the project's compile_commands.json with the wrappers (paths
    under the original source tree mapped into `tree`) and links the objects into `binary`."""
    commands = extract_corpus_lib.read_compile_commands(project.compile_commands)
    if not commands:
        raise CompareError(f"{project.compile_commands} lists no compile commands")
    src = os.path.abspath(project.source_dir)

    def moved(path: str) -> str:
        path = os.path.abspath(path)
        return os.path.join(tree, os.path.relpath(path, src)) if path.startswith(src + os.sep) or path == src else path

    lines, objects, any_cxx = ["set -e"], [], False
    for i, command in enumerate(commands):
        argv = extract_corpus_lib.embed_bitcode_argv(command, "", "C", "CXX")[:-5]  # drops embedding, -c -o
        is_cxx = argv[0] == "CXX"
        any_cxx |= is_cxx
        args = [moved(a) if os.path.isabs(a) else a for a in argv[1:]]
        args = [f"-I{moved(a[2:])}" if a.startswith("-I/") else a for a in args]
        obj = os.path.join(tree, ".bcmax_objects", f"{i}.o")
        objects.append(obj)
        lines.append(f"cd {shlex.quote(moved(command.directory))}")
        lines.append(shlex.join([cxx if is_cxx else cc, *args, "-c", "-o", obj]))
    binary = os.path.join(tree, project.binary)
    lines.append(f"mkdir -p {shlex.quote(os.path.dirname(binary))}")
    lines.append(shlex.join([cxx if any_cxx else cc, *objects, *project.link_args, "-o", binary]))
    return "mkdir -p " + shlex.quote(os.path.join(tree, ".bcmax_objects")) + "\n" + "\n".join(lines) + "\n"


def build_variant(
    project: Project,
    variant: str,
    plugin: str,
    work_dir: str,
    *,
    flags: BuildFlags,
    llvm_objcopy: str = "llvm-objcopy-22",
    llvm_size: str = "llvm-size-22",
    build_timeout_s: float = 3600.0,
    smoke_timeout_s: float = 600.0,
) -> BuildResult:
    """Builds `project` as `variant` in `work_dir/tree` (a fresh copy), then moves the tree to `work_dir/variant`.

    Every variant is built at the same path, so paths the build embeds are equal in both.
    """
    tree = os.path.join(work_dir, "tree")
    records = os.path.join(work_dir, "records")
    final = os.path.join(work_dir, variant)
    for d in (tree, records, final):
        shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(project.source_dir, tree, symlinks=True)
    cc, cxx = write_wrappers(os.path.join(work_dir, "bin"), records, flags, variant, plugin)
    env = dict(os.environ, CC=cc, CXX=cxx)
    for var in ("CFLAGS", "CXXFLAGS", "LDFLAGS", "CPPFLAGS", "MAKEFLAGS", "MFLAGS"):
        env.pop(var, None)
    if project.build_command:
        argv = ["bash", "-eo", "pipefail", "-c", project.build_command]
    else:
        argv = ["bash", "-c", _build_from_compile_commands(project, tree, cc, cxx)]
    logging.info("%s: building the %s variant", project.name, variant, extra=console.STEP)
    code, output, cpu, wall = _run_timed(argv, tree, env, build_timeout_s)
    built = os.path.join(tree, project.binary)
    error = ""
    if code != 0:
        error = f"build command exited {code}:\n{output}"
    elif not os.path.isfile(built):
        error = f"the build succeeded but wrote no {project.binary}: set the project's binary path\n{output}"
    compile_commands = os.path.join(work_dir, f"{variant}_compile_commands.json")
    objects = collect_compile_commands(records, compile_commands)
    os.rename(tree, final)
    shutil.rmtree(records, ignore_errors=True)
    objects = [os.path.join(final, os.path.relpath(o, tree)) if o.startswith(tree + os.sep) else o for o in objects]
    _retarget_compile_commands(compile_commands, tree, final)
    empty = BuildResult(variant, False, error, "", "", 0, 0, {}, 0, len(objects), cpu, wall, compile_commands, None)
    if error:
        logging.error("%s (%s): %s", project.name, variant, error[-1000:])
        return empty
    binary = os.path.join(work_dir, f"{variant}_{os.path.basename(project.binary)}")
    shutil.copy2(os.path.join(final, project.binary), binary)
    stripped = binary + ".stripped"
    subprocess.run([llvm_objcopy, "--strip-all", binary, stripped], check=True, capture_output=True)
    smoke = run_smoke_test(project.smoke_test, binary, project.data_dir or project.source_dir, smoke_timeout_s)
    if not smoke.passed:
        logging.error("%s: the %s build FAILED its smoke test:\n%s", project.name, variant, smoke.output)
    return dataclasses.replace(
        empty,
        ok=True,
        binary=binary,
        stripped=stripped,
        file_bytes=os.path.getsize(binary),
        stripped_bytes=os.path.getsize(stripped),
        sections=elf_sections(binary),
        object_text_bytes=object_text_bytes(objects, llvm_size) if objects else 0,
        smoke=smoke,
    )


def _retarget_compile_commands(path: str, old: str, new: str) -> None:
    """Rewrites the recorded build-tree paths after the tree moved from `old` to `new`."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    entries = json.loads(text)

    def fix(s: str) -> str:
        return s.replace(old + os.sep, new + os.sep) if s == old or (old + os.sep) in s else s

    for e in entries:
        e["directory"] = new if e["directory"] == old else fix(e["directory"])
        e["file"], e["output"] = fix(e["file"]), fix(e["output"])
        e["arguments"] = [fix(a) for a in e["arguments"]]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=1)


@gin.configurable(module="compare_builds")
def compare(
    project: Project,
    plugin: str,
    work_dir: str,
    *,
    flags: BuildFlags | None = None,
    build_timeout_s: float = 3600.0,
    smoke_timeout_s: float = 600.0,
) -> Comparison:
    """Builds `project` stock, then with `plugin` (the path of libbcmax_inliner.so), in `work_dir/<name>/`.

    Args:
      build_timeout_s: limit of one variant's build command (seconds).
      smoke_timeout_s: limit of one smoke test (seconds).
    """
    flags = flags or BuildFlags()
    if not os.path.isdir(project.source_dir):
        raise CompareError(f"{project.name}: source directory {project.source_dir} does not exist")
    if not project.build_command and not project.compile_commands:
        raise CompareError(f"{project.name}: give a build command or a compile_commands.json")
    plugin = os.path.abspath(plugin)
    if flags.plugin_flags and not os.path.isfile(plugin):
        raise CompareError(f"plugin {plugin} not found: export a policy first (`make plugin`)")
    project_dir = os.path.join(os.path.abspath(work_dir), project.name)
    os.makedirs(project_dir, exist_ok=True)
    results = {
        variant: build_variant(
            project,
            variant,
            plugin,
            project_dir,
            flags=flags,
            build_timeout_s=build_timeout_s,
            smoke_timeout_s=smoke_timeout_s,
        )
        for variant in (STOCK, PLUGIN)
    }
    return Comparison(project.name, results[STOCK], results[PLUGIN])


def make_corpus(comparison: Comparison, corpus_dir: str, jobs: int = 1) -> extract_corpus_lib.ExtractionSummary:
    """The corpus of the stock build, from its recorded compile_commands.json (extract_corpus's route)."""
    return extract_corpus_lib.extract_from_compile_commands(comparison.stock.compile_commands, corpus_dir, jobs=jobs)


def format_table(comparisons: Sequence[Comparison]) -> str:
    """A text table: per program, sizes stock -> plugin and ratios, or the failure in capitals."""
    header = (
        f"{'program':<10} {'unstripped':>21} {'stripped':>21} {'loaded':>21} "
        f"{'linked':>7} {'objects':>7} {'smoke':>11}"
    )
    lines = [header, "-" * len(header)]
    for c in comparisons:
        if not c.ok:
            lines.append(f"{c.project:<10} FAILED: {c.failure}")
            continue
        s, p = c.stock, c.plugin

        def pair(a: int, b: int) -> str:
            return f"{a:>9} -> {b:>9}"

        lines.append(
            f"{c.project:<10} {pair(s.file_bytes, p.file_bytes):>21} {pair(s.stripped_bytes, p.stripped_bytes):>21} "
            f"{pair(s.loaded_bytes, p.loaded_bytes):>21} {c.ratio('stripped_bytes'):>7.4f} "
            f"{c.ratio('object_text_bytes'):>7.4f} {'pass/pass':>11}"
        )
    lines.append(
        "bytes, stock -Oz -> plugin; linked: stripped plugin/stock; objects: text of the objects, plugin/stock; "
        "loaded: SHF_ALLOC sections"
    )
    return "\n".join(lines)
