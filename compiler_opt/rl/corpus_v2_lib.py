"""Default corpus v2: many codebases, built per codebase and per module into a cache, any subset on request.

A codebase (`Codebase`) is the library sources of one pinned sdist: which files are its translation
units (TUs), which are left out and why, and its compile flags. Module names are
`CODEBASE/PATH` (PATH: the source path without `strip_prefix` and extension), so the codebase is the
first path component of every name.

Cache (under make_default_corpus_lib.default_cache_dir()):
  sdists/FILENAME                     verified downloads (shared with the v1 corpus)
  corpus_v2/src/SHA/                  each unpacked sdist (SHA: its SHA-256's first 16 digits), plus
                                      the generated files and split amalgamations of its codebases
  corpus_v2/codebases/NAME-KEY/       one codebase; KEY hashes its recipe, the opt flags, the
                                      compile-time limit and the compilers' `--version`
    modules/PATH.bc, PATH.cmd         each built module (`.llvmbc`/`.llvmcmd` of its object)
    results.jsonl                     one JSON line per compiled TU: status ok / failed / slow / empty,
                                      wall and CPU seconds, reason; appended after the module files
                                      are in place, so an interrupted build resumes where it stopped
  corpus_v2/views/KEY/                a corpus for one selection (hard links into modules/) with
                                      corpus_description.json and MANIFEST_FILE

A selection is (codebases, max_modules_per_codebase, sample_seed). Each codebase's TUs are ranked
by SHA-256 of `SEED:NAME`; the selection takes the first N TUs in that order that compiled within
the limit, compiling only the TUs needed to know them. A TU is left out if clang fails on it, if
its object defines no function, or if its compile (-Oz with embedded bitcode) takes more than
`max_compile_seconds` of CPU time (user + system of the clang process, which a loaded machine does
not inflate as wall time).

CPU time still varies between machines and with their load, and a TU near the limit would be in the
corpus on one machine and not on another, changing the corpus, its split and every figure on it.
So the slow TUs are measured once, on a full build, and pinned in SLOW_LIST_FILE (`write_slow_list`
writes it from that build's manifest): for a codebase the file lists, its listed TUs are left out
without compiling, and the others are kept unless they pass `pinned_slack` times the limit (a far
slower machine). Codebases the file does not list are measured against the limit on each build.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import fnmatch
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable, Mapping, Sequence

import gin
import tqdm
from absl import logging

from compiler_opt.rl import atomic_file, corpus, extract_corpus_lib, splits
from compiler_opt.rl import make_default_corpus_lib as v1
from compiler_opt.rl.corpus_v2_recipes import CODEBASES, Codebase

# Bump when the build changes in a way the keys do not see.
RECIPE_VERSION = 1
RESULTS_FILE = "results.jsonl"
_UNPACKED_MARKER = ".unpacked"
_STDERR_TAIL_CHARS = 600
# Codebase fields added after the first builds: left out of the key while at their default, so that
# adding a field does not invalidate the codebases already built.
_KEY_OMITS_AT_DEFAULT = {"sample": 0}


# Salt of the recipe's TU sample. The split (splits.py) assigns files by the unsalted score of their module name, so
# a sample ranked by that same score would hold only files the split sends to validation and test, and none to train.
RECIPE_SAMPLE_SALT = "recipe-sample:"

# The slow TUs of every codebase, measured once on a full build (see the module docstring).
SLOW_LIST_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_v2_slow.json")
_SLOW_REASON = "its -Oz compile is too slow"


@dataclasses.dataclass(frozen=True)
class SlowList:
    """The TUs whose -Oz compile took more than `max_compile_seconds` of CPU on the build `measured_on`
    describes: {codebase name: sorted source paths}. A codebase present with no path had no slow TU."""

    max_compile_seconds: float
    measured_on: str
    codebases: Mapping[str, tuple[str, ...]]


def read_slow_list(path: str) -> SlowList:
    """Reads a slow list (JSON: {"max_compile_seconds": s, "measured_on": text, "codebases": {name: [path]}})."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        codebases = raw["codebases"]
        if not isinstance(codebases, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in codebases.values()
        ):
            raise TypeError("codebases must map each codebase name to a list of source paths")
        return SlowList(
            float(raw["max_compile_seconds"]),
            str(raw.get("measured_on", "")),
            {k: tuple(sorted(v)) for k, v in codebases.items()},
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise v1.DefaultCorpusError(
            f"{path} is not a slow list ({type(e).__name__}: {e}): restore it from git, or write it again with "
            "`make_default_corpus --corpus=v2 --write_slow_list=PATH` after a full build"
        ) from e


def slow_list_of(manifest: v1.CorpusManifest, measured_on: str) -> SlowList:
    """The slow list of a full v2 build's manifest; an error if a codebase was sampled or not fully compiled."""
    max_s = float((manifest.selection or {}).get("max_compile_seconds", 0.0))
    if (manifest.selection or {}).get("max_modules") or manifest.corpus != "v2":
        raise v1.DefaultCorpusError("a slow list is measured on a full v2 build (no --max_modules_per_codebase)")
    codebases = {}
    for record in manifest.codebases:
        unfinished = [x for x in record.left_out if x.what == "*" and "not compiled yet" in x.reason]
        if unfinished:
            raise v1.DefaultCorpusError(f"{record.name}: {unfinished[0].count} TUs not compiled yet; finish the build")
        slow = [p for x in record.left_out if x.reason == _SLOW_REASON for p in x.what.split()]
        codebases[record.name] = tuple(sorted(slow))
    return SlowList(max_s, measured_on, codebases)


def write_slow_list(path: str, slow: SlowList) -> None:
    body = {
        "max_compile_seconds": slow.max_compile_seconds,
        "measured_on": slow.measured_on,
        "codebases": {k: list(v) for k, v in sorted(slow.codebases.items())},
    }
    atomic_file.write_text(path, json.dumps(body, indent=1) + "\n")


def recipe_sample(paths: Sequence[str], names: dict[str, str], n: int) -> list[str]:
    """The `n` of `paths` (sorted) whose module names (`names[path]`) rank lowest by a salted SHA-256.

    Independent of the split: the sampled files of a codebase fall into train, validation and test in the split's
    proportions.
    """
    order = sorted(paths, key=lambda p: splits.score(names[p], salt=RECIPE_SAMPLE_SALT))
    return sorted(order[:n])


@dataclasses.dataclass(frozen=True)
class TuResult:
    """The outcome of compiling one TU and its wall and CPU seconds.

    status: "ok" (kept), "failed" (clang error), "slow" (over the CPU-time limit or killed at the
    wall-time limit) or "empty" (the object defines no function: nothing to inline).
    """

    name: str
    source: str
    status: str
    wall_seconds: float
    cpu_seconds: float
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which modules a v2 corpus holds: codebases (empty: all), at most `max_modules` each (0: all), and only the
    modules named in `modules` (`CODEBASE/PATH` names; empty: no restriction by name)."""

    codebases: tuple[str, ...] = ()
    max_modules: int = 0
    seed: int = 0
    modules: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class BuildStats:
    """What one build_corpus_v2 call did: TUs it compiled (0 when everything was cached) and wall seconds."""

    compiled: int
    wall_seconds: float


def language_of(source: str) -> str:
    """ "c++" for C++ suffixes, else "c"."""
    return "c++" if source.endswith(extract_corpus_lib.CXX_SUFFIXES) else "c"


def module_names(codebase: Codebase, sources: Sequence[str]) -> dict[str, str]:
    """{source: `CODEBASE/PATH`}: PATH is the source without `strip_prefix` and suffix, except that
    sources which would share a name (`ggml.c`, `ggml.cpp`) keep their suffix."""
    stripped = [s.removeprefix(codebase.strip_prefix) for s in sources]
    names = extract_corpus_lib.unique_module_names(stripped, ())
    return {s: f"{codebase.name}/{n}" for s, n in zip(sources, names, strict=True)}


def codebase_key(
    codebase: Codebase,
    opt_flags: Sequence[str],
    max_compile_seconds: float,
    compilers: Sequence[str],
    pinned_slow: Sequence[str] | None = None,
) -> str:
    recipe = {
        "recipe_version": RECIPE_VERSION,
        "codebase": {
            k: v
            for k, v in dataclasses.asdict(codebase).items()
            if not (k in _KEY_OMITS_AT_DEFAULT and v == _KEY_OMITS_AT_DEFAULT[k])
        },
        "opt_flags": list(opt_flags),
        "max_compile_seconds": max_compile_seconds,
        "compilers": [*compilers, *(v1.compiler_version(c) for c in compilers)],
    }
    if pinned_slow is not None:
        recipe["pinned_slow"] = sorted(pinned_slow)
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _unpack(archive: str, dest: str) -> None:
    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")


def _list_from_python(path: str, variable: str) -> list[str]:
    """The list of strings assigned to `variable` in the Python file `path` (read, never executed)."""
    import ast

    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == variable for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise v1.DefaultCorpusError(f"{path} assigns no list {variable}")


class _CodebaseBuild:
    """One codebase's cache directory: its sources, its TUs and the results recorded so far."""

    def __init__(
        self,
        codebase: Codebase,
        cache_dir: str,
        key: str,
        max_cpu_seconds: float,
        pinned_slow: Sequence[str] | None = None,
        pinned_reason: str = "",
    ):
        self.codebase = codebase
        # The CPU-time limit of one compile, and the TUs left out as slow without compiling (None: none pinned).
        self.max_cpu_seconds = max_cpu_seconds
        self.pinned_slow = None if pinned_slow is None else frozenset(pinned_slow)
        self.pinned_reason = pinned_reason
        self.pinned_out: list[str] = []
        self.dir = os.path.join(cache_dir, "corpus_v2", "codebases", f"{codebase.name}-{key}")
        self.key = key
        self.cache_dir = cache_dir
        # The unpacked sdist, shared by the codebases it holds.
        self.src = os.path.join(cache_dir, "corpus_v2", "src", codebase.sdist.sha256[:16])
        self.root = os.path.join(self.src, *codebase.root.split("/"))
        self.modules_dir = os.path.join(self.dir, "modules")
        self.lock = threading.Lock()
        self.tus: list[str] = []
        self.names: dict[str, str] = {}
        self.left_out: list[tuple[str, int, str]] = []
        self.results: dict[str, TuResult] = {}

    def prepare(self) -> None:
        """Unpacks the sdist (once per sdist, shared by its codebases) and writes this codebase's
        generated files, then lists the TUs and reads results.jsonl."""
        cb = self.codebase
        os.makedirs(self.dir, exist_ok=True)
        shared = os.path.dirname(self.src)
        os.makedirs(shared, exist_ok=True)
        with _locked(self.src + ".lock"):
            if not os.path.isfile(os.path.join(self.src, _UNPACKED_MARKER)):
                archive = v1.fetch_sdist(cb.sdist, self.cache_dir)
                tmp = tempfile.mkdtemp(dir=shared, prefix=".unpack-")
                _unpack(archive, tmp)
                with open(os.path.join(tmp, _UNPACKED_MARKER), "w") as f:
                    f.write(cb.sdist.sha256 + "\n")
                if os.path.isdir(self.src):
                    shutil.rmtree(self.src)
                os.rename(tmp, self.src)
            if not os.path.isdir(self.root):
                raise v1.DefaultCorpusError(
                    f"{cb.sdist.filename} has no directory {cb.root}: "
                    f"fix the recipe of {cb.name} in corpus_v2_recipes.py"
                )
            prepared = os.path.join(self.dir, ".prepared")
            if not os.path.isfile(prepared):
                for dest, source in cb.copied:
                    shutil.copyfile(
                        os.path.join(self.root, *source.split("/")), os.path.join(self.root, *dest.split("/"))
                    )
                for path, text in cb.generated:
                    atomic_file.write_text(os.path.join(self.root, *path.split("/")), text)
                if cb.amalgamation:
                    v1.split_amalgamation(os.path.join(self.root, cb.amalgamation), os.path.join(self.root, "split"))
                atomic_file.write_text(prepared, self.key + "\n")
        self._list_tus()
        self._read_results()

    def _list_tus(self) -> None:
        cb = self.codebase
        if cb.listed_in:
            path, variable = cb.listed_in
            top = os.path.join(self.src, *cb.root.split("/")[:1])
            prefix = cb.root.split("/", 1)[1] + "/" if "/" in cb.root else ""
            listed = [p.removeprefix(prefix) for p in _list_from_python(os.path.join(top, path), variable)]
            candidates = sorted({p for p in listed if any(fnmatch.fnmatchcase(p, pat) for pat in cb.sources)})
        else:
            candidates = sorted(
                {
                    os.path.relpath(p, self.root).replace(os.sep, "/")
                    for pattern in cb.sources
                    for p in glob.glob(os.path.join(self.root, pattern), recursive=True)
                }
            )
        if not candidates:
            raise v1.DefaultCorpusError(
                f"{cb.sdist.filename}: no file matches {cb.sources}; "
                f"fix the recipe of {cb.name} in corpus_v2_recipes.py"
            )
        self.names = module_names(cb, candidates)
        kept = candidates
        for exclusion in cb.exclude:
            matched = [p for p in kept if fnmatch.fnmatchcase(p, exclusion.pattern)]
            kept = [p for p in kept if not fnmatch.fnmatchcase(p, exclusion.pattern)]
            self.left_out.append((exclusion.pattern, len(matched), exclusion.reason))
        if cb.sample and len(kept) > cb.sample:
            self.left_out.append(("*", len(kept) - cb.sample, f"not in the recipe's sample of {cb.sample} TUs"))
            kept = recipe_sample(kept, self.names, cb.sample)
        if self.pinned_slow:
            slow = [p for p in kept if p in self.pinned_slow]
            kept = [p for p in kept if p not in self.pinned_slow]
            if slow:
                self.left_out.append((" ".join(slow), len(slow), self.pinned_reason))
            self.pinned_out = slow
        self.tus = kept

    def _read_results(self) -> None:
        path = os.path.join(self.dir, RESULTS_FILE)
        self.results = {}
        if not os.path.isfile(path):
            return
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    r = TuResult(**json.loads(line))
                except (ValueError, TypeError):  # A line cut by an interrupted build: that TU is redone.
                    continue
                if r.status != "ok" or all(os.path.isfile(p) for p in self.module_paths(r.name)):
                    self.results[r.source] = r

    def module_paths(self, name: str) -> tuple[str, str]:
        base = os.path.join(self.modules_dir, *name.split("/")[1:])
        return base + ".bc", base + ".cmd"

    def ranking(self, selection: Selection) -> list[str]:
        """The TUs `selection` may take (by name, if it names modules), in its sampling order."""
        tus = self.tus
        if selection.modules:
            wanted = frozenset(selection.modules)
            tus = [s for s in tus if self.names[s] in wanted]
        return sorted(tus, key=lambda s: hashlib.sha256(f"{selection.seed}:{self.names[s]}".encode()).digest())

    def to_compile(self, selection: Selection) -> list[str]:
        """TUs without a result among the first ones in ranking order that could fill the selection."""
        if not selection.max_modules:
            return [s for s in self.ranking(selection) if s not in self.results]
        todo, ok = [], 0
        for source in self.ranking(selection):
            if ok + len(todo) >= selection.max_modules:
                break
            result = self.results.get(source)
            if result is None:
                todo.append(source)
            elif result.status == "ok":
                ok += 1
        return todo

    def selected(self, selection: Selection) -> list[TuResult]:
        ok = [self.results[s] for s in self.ranking(selection) if s in self.results and self.results[s].status == "ok"]
        if selection.max_modules:
            ok = ok[: selection.max_modules]
        return sorted(ok, key=lambda r: r.name)

    def record(self, result: TuResult) -> None:
        line = json.dumps(dataclasses.asdict(result)) + "\n"
        with self.lock, _locked(os.path.join(self.dir, ".lock")):
            with open(os.path.join(self.dir, RESULTS_FILE), "a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            self.results[result.source] = result


def _compile_tu(
    build: _CodebaseBuild,
    source: str,
    opt_flags: Sequence[str],
    tools: tuple[str, str, str, str],
    timeout_s: float,
) -> TuResult:
    clang, clangxx, objcopy, nm = tools
    cb = build.codebase
    name = build.names[source]
    language = language_of(source)
    argv = [
        clangxx if language == "c++" else clang,
        *opt_flags,
        *cb.flags,
        *(cb.cxx_flags if language == "c++" else cb.c_flags),
        "-ffile-compilation-dir=.",
        *extract_corpus_lib.EMBED_BITCODE_FLAGS,
        "-c",
        source,
        "-o",
    ]
    with tempfile.TemporaryDirectory(prefix="corpus_v2_") as tmp:
        obj = os.path.join(tmp, "m.o")
        start = time.monotonic()
        max_cpu = build.max_cpu_seconds
        status, reason, cpu = _run_measured([*argv, obj], build.root, timeout_s, max_cpu)
        wall = time.monotonic() - start
        if status == "ok" and cpu > max_cpu:
            status, reason = "slow", f"compile took {cpu:.1f} s of CPU > {max_cpu} s"
        if status == "ok" and not _defines_a_function(obj, nm):
            status, reason = "empty", "defines no function (data only, or code for another configuration)"
        if status == "ok":
            bc, cmd = build.module_paths(name)
            os.makedirs(os.path.dirname(bc), exist_ok=True)
            error = extract_corpus_lib.dump_sections(
                obj, os.path.join(tmp, "m.bc"), os.path.join(tmp, "m.cmd"), objcopy
            )
            if error is not None:
                status, reason = "failed", f"{objcopy}: {error}"
            else:
                atomic_file.write_with(bc, lambda t: shutil.copyfile(os.path.join(tmp, "m.bc"), t))
                atomic_file.write_with(cmd, lambda t: shutil.copyfile(os.path.join(tmp, "m.cmd"), t))
    result = TuResult(name, source, status, round(wall, 3), round(cpu, 3), reason)
    build.record(result)
    return result


def _defines_a_function(obj: str, nm: str) -> bool:
    proc = subprocess.run([nm, "--defined-only", obj], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise v1.DefaultCorpusError(f"{nm} failed on {obj}: {proc.stderr.strip()} (is llvm-22 installed?)")
    return any(line.split()[-2:-1] in (["T"], ["t"], ["W"]) for line in proc.stdout.splitlines())


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_measured(argv: Sequence[str], cwd: str, timeout_s: float, max_cpu_s: float) -> tuple[str, str, float]:
    """Runs a compile; returns (status "ok"/"failed"/"slow", reason, CPU seconds of the process).

    The compile is stopped once it has used more than `max_cpu_s` of CPU (it would be left out
    anyway) or `timeout_s` of wall time.
    """
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as e:
        return "failed", f"cannot run {argv[0]}: {e}", 0.0
    stopped: list[str] = []
    reaped = threading.Event()
    lock = threading.Lock()

    def watch():
        deadline = time.monotonic() + timeout_s
        while not reaped.wait(0.25):
            if time.monotonic() > deadline:
                why = f"stopped after {timeout_s} s of wall time"
            elif _cpu_seconds(proc.pid) > max_cpu_s:
                why = f"stopped after more than {max_cpu_s} s of CPU"
            else:
                continue
            # os.kill, not proc.kill: Popen.kill may reap the child itself, and then wait4 below fails.
            with lock:
                if not reaped.is_set():
                    stopped.append(why)
                    os.kill(proc.pid, signal.SIGKILL)
            return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        stderr = proc.stderr.read()
        # Wait for the exit without reaping, so that the pid stays valid for the watcher's kill.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        with lock:
            reaped.set()
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        reaped.set()
        proc.stderr.close()
    watcher.join()
    cpu = usage.ru_utime + usage.ru_stime
    if stopped:
        return "slow", stopped[0], cpu
    if proc.returncode != 0:
        tail = stderr.decode(errors="replace").strip()[-_STDERR_TAIL_CHARS:]
        return "failed", f"exit {proc.returncode}: {tail}", cpu
    return "ok", "", cpu


def select_codebases(names: Iterable[str], codebases: Sequence[Codebase] = CODEBASES) -> list[Codebase]:
    """The codebases named (all if none), in recipe order; an unknown name is an error listing the known ones."""
    names = [n for n in names if n]
    known = {cb.name: cb for cb in codebases}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise v1.DefaultCorpusError(f"unknown codebases {unknown}; known: {', '.join(known)}")
    return [cb for cb in codebases if not names or cb.name in names]


@gin.configurable(module="corpus_v2")
def build_corpus_v2(
    cache_dir: str | None = None,
    jobs: int = 2,
    selection: Selection | None = None,
    *,
    codebases: Sequence[Codebase] = CODEBASES,
    opt_flags: Sequence[str] = ("-Oz",),
    max_compile_seconds: float = 3.0,
    slow_list: str | None = SLOW_LIST_FILE,
    pinned_slack: float = 4.0,
    compile_timeout_s: float = 1800.0,
    clang: str = "clang-22",
    clangxx: str = "clang++-22",
    objcopy: str = "llvm-objcopy-22",
    nm: str = "llvm-nm-22",
    progress: bool = True,
    compile: bool = True,
) -> tuple[str, BuildStats]:
    """Builds what `selection` needs (only TUs without a cached result), then returns its corpus directory.

    Args:
      cache_dir: cache root (default: make_default_corpus_lib.default_cache_dir()).
      jobs: parallel compiles.
      selection: codebases (names from `codebases`) and modules per codebase (default: everything).
      codebases: the recipes (default: corpus_v2_recipes.CODEBASES).
      opt_flags: optimization flags of every compile.
      max_compile_seconds: a TU whose compile takes more CPU seconds than this is left out ("slow").
      slow_list: the slow TUs measured once (SLOW_LIST_FILE; None: measure every TU on this build). For a
        codebase it lists, the listed TUs are left out uncompiled and the limit of the others is
        `pinned_slack` times the list's max_compile_seconds.
      compile: False makes a corpus of what is already built, compiling nothing (e.g. during a
        long build; the manifest counts the TUs not compiled yet).
      compile_timeout_s: wall-time limit of one compile (then it is killed and left out as slow);
        a compile is also stopped as soon as its CPU time passes `max_compile_seconds`.

    Returns:
      (corpus directory with corpus_description.json and MANIFEST_FILE, what this call did).

    Raises:
      DefaultCorpusError: an unknown codebase, a failed download, or a recipe matching no file. A TU
        that fails to compile is recorded and left out; it never stops the build.
    """
    start = time.monotonic()
    cache_dir = cache_dir or v1.default_cache_dir()
    selection = selection or Selection()
    chosen = select_codebases(selection.codebases, codebases)
    tools = (clang, clangxx, objcopy, nm)
    pinned = read_slow_list(slow_list) if slow_list else None
    builds = []
    for cb in chosen:
        slow = pinned.codebases.get(cb.name) if pinned else None
        if slow is None:
            limit, reason = max_compile_seconds, ""
        else:
            limit = pinned.max_compile_seconds * pinned_slack
            reason = (
                f"{_SLOW_REASON} (over {pinned.max_compile_seconds} s of CPU when measured: "
                f"{os.path.basename(slow_list)})"
            )
        key = codebase_key(cb, opt_flags, limit, (clang, clangxx), slow)
        build = _CodebaseBuild(cb, cache_dir, key, limit, slow, reason)
        build.prepare()
        builds.append(build)
    compiled = 0
    while compile:
        work = [(b, s) for b in builds for s in b.to_compile(selection)]
        if not work:
            break
        # Largest sources first (they take longest), so the pool does not end on a long tail.
        work.sort(key=lambda w: -os.path.getsize(os.path.join(w[0].root, w[1])))
        logging.info("compiling %d TUs of %d codebases with %d jobs", len(work), len(builds), jobs)
        bar = tqdm.tqdm(total=len(work), desc="corpus v2", unit="TU", disable=not progress, mininterval=2.0)
        bar_lock = threading.Lock()

        def one(item, bar=bar, bar_lock=bar_lock):
            try:
                return _compile_tu(item[0], item[1], opt_flags, tools, compile_timeout_s)
            except (OSError, subprocess.SubprocessError) as e:  # Not the TU's fault: nothing recorded, retried.
                logging.warning("%s: %s: %s; it will be retried by the next build", item[0].codebase.name, item[1], e)
                return None
            finally:
                with bar_lock:
                    bar.update(1)

        try:
            extract_corpus_lib.parallel_map(one, work, jobs)
        finally:
            bar.close()
        compiled += len(work)
    limits = {"max_compile_seconds": max_compile_seconds, "slow_list": pinned and os.path.basename(slow_list)}
    view = _write_view(cache_dir, builds, selection, opt_flags, limits, clang)
    return view, BuildStats(compiled, round(time.monotonic() - start, 1))


# CPU-second limit of one compile in the large-modules corpus (build_large_modules): far above any TU of corpus v2's
# recipes on this machine kind, so it only guards against a runaway compile.
LARGE_MAX_COMPILE_SECONDS = 120.0


def slow_module_names(codebases: Iterable[str] = (), slow_list: str = SLOW_LIST_FILE) -> set[str]:
    """Module names of the TUs the pinned slow list leaves out of `codebases` (empty: every codebase it lists).
    An unknown codebase raises DefaultCorpusError naming the known ones."""
    pinned = read_slow_list(slow_list)
    chosen = select_codebases(codebases) if codebases else [c for c in CODEBASES if pinned.codebases.get(c.name)]
    names = set()
    for cb in chosen:
        names |= set(module_names(cb, pinned.codebases.get(cb.name, ())).values())
    return names


def build_large_modules(
    cache_dir: str | None = None,
    jobs: int = 2,
    codebases: Sequence[str] = (),
    *,
    max_compile_seconds: float = LARGE_MAX_COMPILE_SECONDS,
    progress: bool = True,
    compile: bool = True,
) -> tuple[str, BuildStats]:
    """The large-modules corpus: the TUs that corpus v2 leaves out as slow (the pinned slow list), of `codebases`
    (empty: all), built with the limit `max_compile_seconds` instead. They are mostly the largest C++ modules, which
    decide a program's total size; their frontend is what is slow, so their bitcode compiles in seconds. Only these
    TUs are compiled (a selection by module name), into their own cache entry; returns (corpus dir, stats)."""
    names = slow_module_names(codebases)
    if not names:
        raise v1.DefaultCorpusError(f"the slow list {SLOW_LIST_FILE} leaves out no TU of {list(codebases)}")
    listed = sorted({splits.codebase_of(name) for name in names})
    return build_corpus_v2(
        cache_dir,
        jobs,
        Selection(codebases=tuple(listed), modules=tuple(sorted(names))),
        slow_list=None,
        max_compile_seconds=max_compile_seconds,
        progress=progress,
        compile=compile,
    )


def _codebase_record(build: _CodebaseBuild, chosen: Sequence[TuResult], selection: Selection) -> v1.CodebaseRecord:
    cb = build.codebase
    # Only the TUs of the recipe as it is now: the cache may also hold results of TUs an older sample took.
    results = {s: build.results[s] for s in build.tus if s in build.results}
    left_out = [v1.LeftOut(pattern, count, reason) for pattern, count, reason in build.left_out]
    candidates = build.ranking(selection)
    if selection.modules:
        unnamed = len(build.tus) - len(candidates)
        if unnamed:
            left_out.append(v1.LeftOut("*", unnamed, "not among the modules the selection names"))
        results = {s: results[s] for s in candidates if s in results}
    for status, why in (
        ("failed", "clang-22 cannot compile it standalone"),
        ("slow", _SLOW_REASON),
        ("empty", "it defines no function (data only, or code for another configuration)"),
    ):
        bad = sorted(r.source for r in results.values() if r.status == status)
        if bad:
            left_out.append(v1.LeftOut(" ".join(bad), len(bad), why))
    untried = sum(1 for s in candidates if s not in results)
    not_selected = sum(1 for r in results.values() if r.status == "ok") - len(chosen)
    sample_full = bool(selection.max_modules) and len(chosen) == selection.max_modules
    if sample_full and untried + not_selected:
        why = f"not sampled (at most {selection.max_modules} modules per codebase)"
        left_out.append(v1.LeftOut("*", untried + not_selected, why))
    elif untried:
        left_out.append(v1.LeftOut("*", untried, "not compiled yet (a build stopped early, or compile=False)"))
    languages = collections.Counter(language_of(r.source) for r in chosen)
    attempted = list(results.values())
    return v1.CodebaseRecord(
        name=cb.name,
        project=cb.sdist.project,
        version=cb.sdist.version,
        filename=cb.sdist.filename,
        sha256=cb.sdist.sha256,
        license=cb.license,
        tu_count=len(build.tus) + len(build.pinned_out),
        module_count=len(chosen),
        languages=dict(sorted(languages.items())),
        left_out=tuple(left_out),
        compile_wall_seconds=round(sum(r.wall_seconds for r in attempted), 1),
        compile_cpu_seconds=round(sum(r.cpu_seconds for r in attempted), 1),
    )


def _write_view(
    cache_dir: str,
    builds: Sequence[_CodebaseBuild],
    selection: Selection,
    opt_flags: Sequence[str],
    limits: Mapping[str, object],
    clang: str,
) -> str:
    chosen = {b.codebase.name: b.selected(selection) for b in builds}
    names = [r.name for b in builds for r in chosen[b.codebase.name]]
    if not names:
        why = collections.Counter(r.status for b in builds for r in b.results.values())
        raise v1.DefaultCorpusError(
            f"no module of {[b.codebase.name for b in builds]} compiled within the limits (TU results: "
            f"{dict(why)}; the reasons are in {RESULTS_FILE} of each codebase under {os.path.dirname(builds[0].dir)})"
        )
    # The view changes with the selection, the modules, and the TUs tried so far (its manifest counts them).
    state = [[b.key, len(b.results)] for b in builds]
    key = hashlib.sha256(json.dumps([state, names, dataclasses.asdict(selection)]).encode()).hexdigest()[:16]
    views = os.path.join(cache_dir, "corpus_v2", "views")
    final = os.path.join(views, key)
    if v1.read_manifest(final) is not None:
        return final
    os.makedirs(views, exist_ok=True)
    with _locked(os.path.join(views, f"{key}.lock")):
        if v1.read_manifest(final) is not None:
            return final
        tmp = tempfile.mkdtemp(dir=views, prefix=f".{key}-")
        modules = []
        for build in builds:
            for r in chosen[build.codebase.name]:
                for src, dst in zip(build.module_paths(r.name), corpus.module_files(tmp, r.name), strict=True):
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    v1.link_or_copy(src, dst)
                modules.append(v1.ModuleOrigin(r.name, build.codebase.name, language_of(r.source), r.source))
        modules.sort(key=lambda m: m.name)
        corpus.write_corpus_description(tmp, [m.name for m in modules])
        records = tuple(_codebase_record(b, chosen[b.codebase.name], selection) for b in builds)
        manifest = v1.CorpusManifest(
            key=key,
            clang_version=v1.compiler_version(clang),
            opt_flags=tuple(opt_flags),
            sdists=tuple(dict.fromkeys(b.codebase.sdist for b in builds)),
            modules=tuple(modules),
            # Cold build time of these codebases: the wall time of all their compiles, one job.
            build_seconds=round(sum(r.compile_wall_seconds for r in records), 1),
            corpus="v2",
            codebases=records,
            selection={**dataclasses.asdict(selection), **limits},
        )
        atomic_file.write_text(os.path.join(tmp, v1.MANIFEST_FILE), manifest.to_json() + "\n")
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
    return final


@contextlib.contextmanager
def _locked(path: str):
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
