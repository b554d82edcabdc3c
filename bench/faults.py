r"""Fault injection with figures, in two groups that are never added together:

  system_faults  faults of the system around the code (a compiler that crashes or hangs, a process killed, a full or
                 read-only disk, a missing tool, a bad policy, a bad corpus, damaged files), each injected against the
                 real code paths, counted per kind: injected, handled as specified, committed data lost (must be 0).
  decoder_fuzz   random byte streams through the protocol decoder alone (no compiler), per stream kind.

The specification of each behaviour is tests/faults/; this script injects them again, at random points, and counts.

Usage:
  .venv/bin/python bench/faults.py [--seed=0] [--collection_kills=6] [--training_kills=2] [--loop_kills=3]
      [--fuzz_streams=3000] [--only=SECTION ...]

Runs on small real modules of the default corpus (built if needed) with clang-22, and the fault injectors of
bench/testkit/. Groups of system faults (the `group` of a table row) and what "handled" means:
  crash            the compiler dies on one module (a stand-in dying of SIGSEGV mid-dialogue, exiting before or
                   without the header, leaving a child behind; the real clang-22 SIGKILLed mid-compile or killed by
                   the kernel at its file-size limit): that compile is committed as failed with the reason, every
                   other result as in a fault-free run, and no process or compile directory is left.
  hang             the compiler stops answering (a stand-in stalling or flooding; the real clang-22 SIGSTOPped):
                   the compile times out, as above.
  compiler stream  a stand-in sends a non-JSON line, a cut observation, an unknown dtype: failed with the protocol
                   error, as above.
  corpus           damaged bitcode fails only its module; bad descriptions and .cmd files raise CorpusError naming
                   the file before any compile.
  disk             full output, compile-cache and compile-temporaries disks, a read-only output file system: a clear
                   error (or, for the cache, no failure), committed data intact, a rerun completes.
  storage          damaged cache entries, half-written temporaries, a truncated profile, damaged trajectory shards:
                   repaired, or a clear error naming the file, committed data intact.
  tools            clang-22 / llvm-size-22 missing (collection, collection with cache, evaluation), saved_model_cli
                   missing, a clang without `inlining_default`: an error saying what to install, nothing committed.
  policy           a saved policy with the wrong signature, NaN outputs or a truncated file is refused before any
                   compile; a real policy reading a feature clang-22 does not send stops collection at the header.
  kill             SIGKILL of the process group of the collection binary (random commit point), of the trainer
                   (after a random checkpoint) and of the BC-MAX loop (random phase): the same command again gives
                   the results of an uninterrupted run, and training resumes from its checkpoint.
data_lost counts modules whose committed result went missing, changed, got duplicated, or was committed as failed
because of a fault that is not the module's own.

Output (JSON): {"system_faults": {"kinds", "injected", "handled", "data_lost", "table": [{"group", "kind",
"injected", "handled", "data_lost", "unhandled": [details]}]}, "decoder_fuzz": {"streams", "handled",
"slowest_decode_seconds", "by_kind": {KIND: {"streams", "handled", "decoded", "protocol_errors", "unhandled"}}},
"seconds"}.
"""

import contextlib
import errno
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from absl import app, flags, logging

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)  # bench.testkit, when run as `python bench/faults.py`

from bench.testkit import injection, trajectory_records  # noqa: E402
from compiler_opt.distributed import local  # noqa: E402
from compiler_opt.rl import (  # noqa: E402  # noqa: E402
    atomic_file,
    compile_cache,
    corpus,
    env,
    evaluate_policy_lib,
    generate_vocab_lib,
    policies,
    protocol,
    saved_policy,
    splits,
)
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection  # noqa: E402
from compiler_opt.rl.imitation_learning import profiles, trajectory_dataset  # noqa: E402
from compiler_opt.rl.inlining import task as task_lib  # noqa: E402
from compiler_opt.tools import export_model_lib  # noqa: E402

_SEED = flags.DEFINE_integer("seed", 0, "Seed of every random choice.")
_COLLECTION_KILLS = flags.DEFINE_integer("collection_kills", 6, "SIGKILLs of the collection binary.")
_TRAINING_KILLS = flags.DEFINE_integer("training_kills", 2, "SIGKILLs of the trainer.")
_LOOP_KILLS = flags.DEFINE_integer("loop_kills", 3, "SIGKILLs of the BC-MAX loop.")
_FUZZ_STREAMS = flags.DEFINE_integer("fuzz_streams", 3000, "Random streams through the protocol decoder.")
_SECTIONS = ("compiler", "real_clang", "corpus", "storage", "tools", "policy", "kill_collection", "kill_training")
_SECTIONS += ("kill_loop",)
_ONLY = flags.DEFINE_multi_enum("only", None, _SECTIONS, "Run only these sections of system faults (default: all).")

BASELINES = ("heuristic", "heuristic:threshold=500")
_TIMEOUT_S = 2.0


class Tally:
    """System faults per kind ({group, kind, injected, handled, data_lost, unhandled}), in the order injected."""

    def __init__(self):
        self.kinds: dict[tuple[str, str], dict] = {}

    def record(self, group: str, kind: str, handled: bool, lost: int = 0, detail: str = "") -> None:
        row = self.kinds.setdefault(
            (group, kind),
            {"group": group, "kind": kind, "injected": 0, "handled": 0, "data_lost": 0, "unhandled": []},
        )
        row["injected"] += 1
        row["handled"] += int(bool(handled))
        row["data_lost"] += lost
        if not handled:
            row["unhandled"].append(detail or kind)
        logging.info("%s / %s %s: %s, %d lost", group, kind, detail, "handled" if handled else "NOT HANDLED", lost)

    def attempt(self, group: str, kind: str, scenario, detail: str = "") -> None:
        """Runs `scenario() -> (handled, lost)`; an unexpected exception counts as not handled."""
        try:
            handled, lost = scenario()
        except Exception as e:  # noqa: BLE001 - the figure must say what went wrong, not stop the benchmark.
            handled, lost = False, 0
            detail = f"{detail} {type(e).__name__}: {e}"[:500]
        self.record(group, kind, handled, lost, detail)

    def summary(self) -> dict:
        rows = list(self.kinds.values())
        totals = {key: sum(r[key] for r in rows) for key in ("injected", "handled", "data_lost")}
        return {"kinds": len(rows), **totals, "table": rows}


@contextlib.contextmanager
def _environment(path_first: str | None = None, path_only: str | None = None, tempdir: str | None = None):
    """Temporarily puts a directory first on PATH (or makes it the whole PATH) and sets tempfile's directory."""
    old_path, old_tempdir = os.environ["PATH"], tempfile.tempdir
    if path_first:
        os.environ["PATH"] = f"{path_first}{os.pathsep}{old_path}"
    if path_only:
        os.environ["PATH"] = path_only
    if tempdir:
        tempfile.tempdir = tempdir
    compile_cache.compiler_version.cache_clear()
    try:
        yield
    finally:
        os.environ["PATH"], tempfile.tempdir = old_path, old_tempdir
        compile_cache.compiler_version.cache_clear()


def _collect(modules, output_dir, timeout_s=600.0, extra_baselines=(), **kwargs):
    with local.LocalExecutor(1) as executor:  # one worker: in this process, so that its children are visible
        return collection.collect(
            modules,
            [*policies.parse_all(BASELINES), *extra_baselines],
            output_dir,
            executor,
            max_exploration_steps=0,
            timeout_s=timeout_s,
            progress=False,
            **kwargs,
        )


def _by_module(output_dir):
    return {p.module: p for p in profiles.read_jsonl(os.path.join(output_dir, collection.PROFILES_FILE))}


def _lost(records, reference, names) -> int:
    return sum(records.get(name) != reference[name] for name in names)


def _files(directory):
    result = {}
    for path in glob.glob(os.path.join(directory, "**"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                result[os.path.relpath(path, directory)] = f.read()
    return result


def _no_leftovers(marker: str) -> bool:
    try:
        injection.assert_no_process_mentions(marker)
    except AssertionError:
        return False
    return True


def _run(module, args, **crash):
    if crash:
        command = ["-m", "bench.testkit.crash_at", *(f"--{k}={v}" for k, v in crash.items()), "--", module, *args]
    else:
        command = ["-m", module, *args]
    return subprocess.run(
        [sys.executable, *command], cwd=_REPO, start_new_session=True, capture_output=True, text=True, timeout=1800
    )


# --- compiler ---------------------------------------------------------------------------------------------------

# mode of bench/testkit/fake_compiler.py -> (group, kind, status, reason in the module's error)
_COMPILER_FAULTS = {
    "crash": ("crash", "clang dies of SIGSEGV mid-dialogue", env.FAILED, "clang exited with signal SIGSEGV"),
    "exit_before_header": ("crash", "clang exits with an error before the header", env.FAILED, "exit code 70"),
    "orphan": ("crash", "clang exits leaving a child process behind", env.FAILED, "exit code 70"),
    "silent": ("crash", "clang exits 0 without the header", env.FAILED, "never sent the interactive-mode header"),
    "stall": ("hang", "clang stops answering mid-dialogue", env.TIMEOUT, "timeout"),
    "flood": ("hang", "clang floods observations without reading advice", env.TIMEOUT, "timeout"),
    "garble": ("compiler stream", "a line that is not JSON", env.FAILED, "protocol error: expected a JSON message"),
    "truncate": ("compiler stream", "stream cut inside an observation", env.FAILED, "stream ended inside observation"),
    "bad_dtype": ("compiler stream", "a feature of unknown dtype", env.FAILED, "has unknown type 'bfloat16'"),
}


def _one_module_fails(modules, reference, faulty, out, compile_tmp, status, reasons, policy_names=None):
    """(handled, lost) of a collection where `faulty` (or only its `policy_names` outcomes) should have failed with
    `status` and one of `reasons`; every other module as in `reference`; no process or compile directory left."""
    outcomes = _by_module(out)[faulty.name].results
    checked = [o for name, o in outcomes.items() if policy_names is None or name in policy_names]
    failed_right = bool(checked) and all(o.status == status and any(r in o.error for r in reasons) for o in checked)
    healthy = [m.name for m in modules if m is not faulty] if policy_names is None else [m.name for m in modules]
    lost = _lost(injection.read_records(out), reference, healthy)
    clean = os.listdir(compile_tmp) == [] and _no_leftovers(compile_tmp)
    return failed_right and clean and lost == 0, lost


def compiler_faults(tally, modules, reference, work, rng):
    for i, (mode, (group, kind, status, reason)) in enumerate(_COMPILER_FAULTS.items()):
        faulty = modules[i % len(modules)]

        def scenario(mode=mode, status=status, reason=reason, faulty=faulty, i=i):
            directory = os.path.join(work, f"compiler_{i}")
            bin_dir, compile_tmp, out = (os.path.join(directory, d) for d in ("bin", "tmp", "out"))
            os.makedirs(compile_tmp)
            injection.write_fake_clang(bin_dir, mode, after=rng.randrange(3), only=faulty.bc_path)
            with _environment(path_first=bin_dir, tempdir=compile_tmp):
                _collect(modules, out, timeout_s=_TIMEOUT_S)
            return _one_module_fails(modules, reference, faulty, out, compile_tmp, status, [reason])

        tally.attempt(group, kind, scenario, f"fake clang-22 mode {mode} on {faulty.name}")


def real_clang_faults(tally, modules, reference, work, rng):
    """The real clang-22 killed, stopped or limited by the kernel in the middle of its compiles."""
    signals = {
        signal.SIGKILL: ("crash", "real clang-22 SIGKILLed mid-compile", env.FAILED, "signal SIGKILL"),
        signal.SIGSTOP: ("hang", "real clang-22 stopped (SIGSTOP) mid-compile", env.TIMEOUT, "timeout"),
    }
    for signum, (group, kind, status, reason) in signals.items():
        at_step = rng.randrange(3)

        def scenario(signum=signum, status=status, reason=reason, at_step=at_step):
            # A fourth baseline whose compiles get the signal at decision `at_step`; the three others are intact.
            directory = os.path.join(work, f"real_clang_{signum}")
            compile_tmp, out = os.path.join(directory, "tmp"), os.path.join(directory, "out")
            os.makedirs(compile_tmp)
            faulty_policy = injection.SignalClangPolicy(signum, at_step)
            with _environment(tempdir=compile_tmp):
                _collect(modules, out, timeout_s=_TIMEOUT_S, extra_baselines=(faulty_policy,))
            handled, lost = True, 0
            for module in modules:
                ok, module_lost = _one_module_fails(
                    modules, reference, module, out, compile_tmp, status, [reason], {faulty_policy.name}
                )
                handled, lost = handled and ok, max(lost, module_lost)
            return handled, lost

        tally.attempt(group, kind, scenario, f"at decision {at_step} of every compile")

    faulty = modules[rng.randrange(len(modules))]

    def file_size_limit():
        directory = os.path.join(work, "real_clang_fsize")
        bin_dir, compile_tmp, out = (os.path.join(directory, d) for d in ("bin", "tmp", "out"))
        os.makedirs(compile_tmp)
        injection.write_limited_clang(bin_dir, "-f 1", only=faulty.bc_path)
        with _environment(path_first=bin_dir, tempdir=compile_tmp):
            _collect(modules, out, timeout_s=_TIMEOUT_S)
        return _one_module_fails(modules, reference, faulty, out, compile_tmp, env.FAILED, ["signal SIGXFSZ"])

    tally.attempt("crash", "real clang-22 killed by the kernel at its file-size limit (SIGXFSZ)", file_size_limit)


# --- input ------------------------------------------------------------------------------------------------------


def _damage_description(root, change):
    path = os.path.join(root, corpus.DESCRIPTION_FILE)
    with open(path) as f:
        description = json.load(f)
    change(description)
    with open(path, "w") as f:
        json.dump(description, f)
    return path


def input_faults(tally, modules, reference, work):
    def damaged_bitcode(kind):
        root = injection.copy_corpus(os.path.join(work, f"input_{kind}"), modules)
        specs = list(corpus.Corpus.load(root))
        damaged = specs[1]
        size = os.path.getsize(damaged.bc_path)
        with open(damaged.bc_path, "r+b") as f:
            if kind == "truncated":
                f.truncate(size // 2)
            else:
                f.write(random.Random(size).randbytes(size))
        out = os.path.join(root, "..", f"out_{kind}")
        summary = _collect(specs, out)
        error = _by_module(out)[damaged.name].results["heuristic"].error
        lost = _lost(injection.read_records(out), reference, [m.name for m in specs if m is not damaged])
        return summary["failed_modules"] == [damaged.name] and "error:" in error and lost == 0, lost

    for kind in ("truncated", "random_bytes"):
        kinds = {"truncated": "bitcode file truncated", "random_bytes": "bitcode file overwritten with random bytes"}
        tally.attempt("corpus", kinds[kind], lambda kind=kind: damaged_bitcode(kind))

    def first_files(root):
        return corpus.module_files(root, modules[0].name)

    def write(path, data):
        with open(path, "wb") as f:
            f.write(data)
        return path

    bad_corpora = {
        ".cmd without -cc1": lambda root: write(first_files(root)[1], b"-Oz\0-c\0"),
        ".cmd file missing": lambda root: (os.unlink(first_files(root)[1]), first_files(root)[1])[1],
        ".bc file missing": lambda root: (os.unlink(first_files(root)[0]), first_files(root)[0])[1],
        "description lists no module": lambda root: _damage_description(root, lambda d: d.update(modules=[])),
        "description lists a module twice": lambda root: _damage_description(
            root, lambda d: d.update(modules=d["modules"] * 2)
        ),
        "module name leaving the corpus": lambda root: _damage_description(root, lambda d: d.update(modules=["../x"])),
        "has_thinlto true": lambda root: _damage_description(root, lambda d: d.update(has_thinlto=True)),
        "has_thinlto not a boolean": lambda root: _damage_description(root, lambda d: d.update(has_thinlto="unknown")),
        "has_thinlto null": lambda root: _damage_description(root, lambda d: d.update(has_thinlto=None)),
        "description not JSON": lambda root: write(os.path.join(root, corpus.DESCRIPTION_FILE), b"{not json"),
        "description truncated": lambda root: injection.truncate_file(os.path.join(root, corpus.DESCRIPTION_FILE)),
    }
    for i, (what, damage) in enumerate(bad_corpora.items()):

        def scenario(damage=damage, i=i):
            root = injection.copy_corpus(os.path.join(work, f"bad_corpus_{i}"), modules[:2])
            named = damage(root)
            try:
                corpus.Corpus.load(root)
            except corpus.CorpusError as e:
                return named in str(e), 0
            return False, 0

        tally.attempt("corpus", what, scenario)


# --- protocol ---------------------------------------------------------------------------------------------------


def _random_json(rng, depth=0):
    kind = rng.randrange(8 if depth < 3 else 5)
    keys = ["features", "advice", "name", "type", "shape", "observation", "context", "x"]
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randint(-(2**66), 2**66) if rng.random() < 0.3 else rng.randint(-3, 5)
    if kind == 3:
        return rng.choice(["int64_t", "float", "bfloat16", "", "a", "inlining_default"])
    if kind == 4:
        return rng.random() * 1e6
    if kind == 5:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def _valid_stream(rng):
    spec = {"type": "int64_t", "port": 0, "shape": [1]}
    names = [f"f{i}" for i in range(rng.randint(1, 4))]
    header = {"features": [dict(spec, name=n) for n in names], "advice": dict(spec, name="inlining_decision")}
    parts = [json.dumps(header).encode() + b"\n"]
    for i in range(rng.randint(0, 4)):
        if rng.random() < 0.3:
            parts.append(b'{"context": "f"}\n')
        payload = b"".join(rng.randint(-(2**40), 2**40).to_bytes(8, "little", signed=True) for _ in names)
        parts.append(json.dumps({"observation": i}).encode() + b"\n" + payload + b"\n")
    return b"".join(parts)


def _stream(rng, kind):
    if kind == "random bytes":
        return rng.randbytes(rng.randrange(400))
    if kind == "json":
        lines = [json.dumps(_random_json(rng)).encode() for _ in range(rng.randint(1, 4))]
        return b"\n".join(lines) + b"\n" + rng.randbytes(rng.randrange(32))
    stream = bytearray(_valid_stream(rng))
    if kind == "mutated":
        for _ in range(rng.randint(1, 4)):
            stream[rng.randrange(len(stream))] = rng.randrange(256)
        return bytes(stream)
    return bytes(stream[: rng.randrange(len(stream) + 1)]) + rng.randbytes(rng.randrange(16))


def _decode(data: bytes, chunk: int) -> tuple[str, str]:
    """("decoded" | "protocol_error" | "other_exception", detail) of feeding `data` to a decoder, `chunk` bytes at a
    time."""
    try:
        decoder = protocol.StreamDecoder()
        for j in range(0, len(data), chunk):
            decoder.feed(data[j : j + chunk])
            while decoder.next_message() is not None:
                pass
        decoder.finish()
        return "decoded", ""
    except protocol.ProtocolError:
        return "protocol_error", ""
    except Exception as e:  # noqa: BLE001 - any other exception is a decoder bug, counted.
        return "other_exception", f"{e!r} on {data[:120]!r}"


def decoder_fuzz(rng, count) -> dict:
    """Random streams through protocol.StreamDecoder (no compiler): handled = decoded, or ProtocolError, within 1 s."""
    kinds = ("random bytes", "json", "mutated", "truncated")
    by_kind = {k: {"streams": 0, "handled": 0, "decoded": 0, "protocol_errors": 0, "unhandled": []} for k in kinds}
    slowest = 0.0
    streams = [(kinds[i % len(kinds)], None) for i in range(count)]
    streams += [("oversized", b"[" * 100_000 + b"\n"), ("oversized", b"x" * (protocol.StreamDecoder.MAX_LINE + 2))]
    by_kind["oversized"] = {"streams": 0, "handled": 0, "decoded": 0, "protocol_errors": 0, "unhandled": []}
    for kind, data in streams:
        data = _stream(rng, kind) if data is None else data
        start = time.monotonic()
        outcome, detail = _decode(data, rng.randint(1, 97) if kind != "oversized" else len(data))
        seconds = time.monotonic() - start
        slowest = max(slowest, seconds)
        row = by_kind[kind]
        row["streams"] += 1
        row["decoded"] += outcome == "decoded"
        row["protocol_errors"] += outcome == "protocol_error"
        # An oversized stream must be refused, not decoded.
        handled = outcome == "protocol_error" or (outcome == "decoded" and kind != "oversized")
        if handled and seconds < 1.0:
            row["handled"] += 1
        else:
            row["unhandled"].append(detail or f"{outcome} in {seconds:.3f} s")
    return {
        "streams": sum(r["streams"] for r in by_kind.values()),
        "handled": sum(r["handled"] for r in by_kind.values()),
        "slowest_decode_seconds": round(slowest, 4),
        "by_kind": by_kind,
    }


# --- interruption -----------------------------------------------------------------------------------------------


def _collection_args(data_path, out):
    return [
        f"--data_path={data_path}",
        f"--output_dir={out}",
        "--num_workers=1",
        *(f"--baselines={b}" for b in BASELINES),
        "--gin_bindings=generate_bc_trajectories.collect.progress=False",
        "--gin_bindings=generate_bc_trajectories.collect.max_exploration_steps=0",
    ]


def _events(stderr: str) -> int:
    return int(re.search(r"crash_at: (\d+) events", stderr).group(1))


def interruption_collection(tally, modules, work, rng, kills):
    module = "compiler_opt.rl.imitation_learning.generate_bc_trajectories"
    data_path = injection.copy_corpus(os.path.join(work, "kill_corpus"), modules)
    reference_dir = os.path.join(work, "kill_reference")
    uninterrupted = _run(module, _collection_args(data_path, reference_dir), event=-1)
    if uninterrupted.returncode != 0:
        raise RuntimeError(uninterrupted.stderr[-2000:])
    events = _events(uninterrupted.stderr)
    reference = injection.read_records(reference_dir)
    for k in range(kills):
        event = rng.randrange(events)

        def scenario(event=event, k=k):
            out = os.path.join(work, f"kill_collection_{k}")
            killed = _run(module, _collection_args(data_path, out), event=event)
            if killed.returncode != -signal.SIGKILL:
                raise RuntimeError(f"not killed at event {event}: {killed.stderr[-500:]}")
            finished = _run(module, _collection_args(data_path, out))
            try:
                records = injection.read_records(out)
            except AssertionError:
                return False, len(modules)
            listed = [p.module for p in profiles.read_jsonl(os.path.join(out, collection.PROFILES_FILE))]
            lost = _lost(records, reference, list(reference)) + len(listed) - len(set(listed))
            clean = not glob.glob(os.path.join(out, "**", ".tmp-*"), recursive=True)
            return finished.returncode == 0 and clean and sorted(listed) == sorted(reference) and lost == 0, lost

        tally.attempt("kill", "collection binary SIGKILLed at a commit point", scenario, f"event {event}/{events}")


def interruption_training(tally, work, rng, kills):
    module = "compiler_opt.rl.imitation_learning.weighted_bc_trainer"
    files = trajectory_records.write_heuristic_shards(
        os.path.join(work, "kill_training_data"), shards=1, modules_per_shard=4
    )
    vocab = os.path.join(work, "kill_training_vocab")
    generate_vocab_lib.generate_vocab(files, vocab, generate_vocab_lib.VocabConfig(num_buckets=100))
    settings = ("num_steps=500", "checkpoint_interval=100", "summary_interval=100", "batch_size=32")
    settings += ("hidden_units=(8,)", "shuffle_buffer_size=1024")
    for k in range(kills):
        checkpoint = rng.randint(1, 4)

        def scenario(checkpoint=checkpoint, k=k):
            root = os.path.join(work, f"kill_training_{k}")
            args = [f"--trajectories={files[0]}", f"--vocab_dir={vocab}", f"--root_dir={root}"]
            args += [f"--gin_bindings=weighted_bc.TrainerConfig.{s}" for s in settings]
            killed = _run(module, args, checkpoint=checkpoint)
            if killed.returncode != -signal.SIGKILL:
                raise RuntimeError(f"not killed after checkpoint {checkpoint}: {killed.stderr[-500:]}")
            finished = _run(module, args)
            resumed = re.search(r"Resumed from \S+ at step (\d+)", finished.stderr)
            step = int(resumed.group(1)) if resumed else 0
            with open(os.path.join(root, "training_summary.json")) as f:
                steps = json.load(f)["steps"]
            saved_policy.SavedPolicy.load(os.path.join(root, "saved_policy"))
            lost = int(step < 100 * checkpoint)
            return finished.returncode == 0 and steps == 500 and lost == 0, lost

        tally.attempt("kill", "trainer SIGKILLed after a checkpoint", scenario, f"checkpoint {checkpoint}")


def interruption_loop(tally, modules, work, rng, kills):
    module = "compiler_opt.rl.imitation_learning.bc_max"
    data_path = injection.copy_corpus(os.path.join(work, "loop_corpus"), modules)
    loop_splits = corpus.Corpus.load(data_path).splits(splits.SplitPolicy(**injection.TINY_LOOP_SPLIT_POLICY))
    validation = {m.name for m in loop_splits.validation}
    train = list(loop_splits.train)
    reference = injection.read_records(_reference_dir(train, os.path.join(work, "loop_reference")))
    bindings = injection.TINY_LOOP_BINDINGS
    points = [
        {"match": "/profiles/", "event": 3},
        {"match": "vocab", "event": 1},
        {"checkpoint": 2},
        {"match": "saved_policy", "event": 0},
        {"match": "eval_validation", "event": 0},
        {"match": "iteration.json", "event": 0},
    ]
    for k, point in enumerate(rng.sample(points, min(kills, len(points)))):

        def scenario(point=point, k=k):
            root = os.path.join(work, f"kill_loop_{k}")
            args = [f"--data_path={data_path}", f"--root_dir={root}", "--iterations=1", "--max_exploration_steps=0"]
            args += ["--num_workers=1", *(f"--baselines={b}" for b in BASELINES), "--gin_files=gin_configs/bc_max.gin"]
            args += [f"--gin_bindings={b}" for b in bindings]
            killed = _run(module, args, **point)
            if killed.returncode != -signal.SIGKILL:
                raise RuntimeError(f"not killed at {point}: {killed.stderr[-500:]}")
            finished = _run(module, args)
            it_dir = os.path.join(root, "iteration_1")
            records = injection.read_records(os.path.join(it_dir, "trajectories"))
            lost = _lost(records, reference, list(reference))
            with open(os.path.join(it_dir, "eval_validation.csv")) as f:
                evaluated = [line.split(",")[0] for line in f.read().splitlines()[1:]]
            done = os.path.isfile(os.path.join(it_dir, "iteration.json"))
            return finished.returncode == 0 and done and sorted(evaluated) == sorted(validation) and lost == 0, lost

        tally.attempt("kill", "BC-MAX loop SIGKILLed in one of its phases", scenario, f"at {point}")


def _reference_dir(modules, out):
    _collect(modules, out)
    return out


# --- storage ----------------------------------------------------------------------------------------------------


def storage_faults(tally, modules, reference, work):
    def full_disk():
        with injection.FillableDisk(os.path.join(work, "disk")) as disk:
            out = os.path.join(disk.path, "out")
            _collect(modules[:2], out)
            committed = _files(out)
            disk.fill()
            try:
                _collect(modules, out)
                raised = False
            except Exception as e:  # noqa: BLE001 - the error type depends on the writer (OSError, TF's).
                raised = "No space left on device" in str(e)
            lost = sum(committed.get(k) != v for k, v in _files(out).items() if k in committed)
            lost += len(set(committed) - set(_files(out)))
            disk.free()
            _collect(modules, out)
            lost += _lost(injection.read_records(out), reference, [m.name for m in modules])
            return raised and lost == 0, lost

    tally.attempt("disk", "output disk full", full_disk, "tmpfs" if injection.can_mount_tmpfs() else "ENOSPC stand-in")

    def full_cache_disk():
        cache_dir = os.path.join(work, "full_cache")
        write_bytes = atomic_file.write_bytes

        def no_space_in_cache(path, data):
            if path.startswith(cache_dir + os.sep):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
            write_bytes(path, data)

        atomic_file.write_bytes = no_space_in_cache
        try:
            summary = _collect(modules, os.path.join(work, "full_cache_out"), cache_dir=cache_dir)
        finally:
            atomic_file.write_bytes = write_bytes
        return summary["failed_modules"] == [], len(summary["failed_modules"])

    tally.attempt("disk", "compile-cache disk full", full_cache_disk)

    def full_compile_temporaries_disk():
        # Compiles write their FIFOs and object into a full tmpfs: the real clang-22 fails to write the object.
        out = os.path.join(work, "full_tmp_out")
        with injection.FillableDisk(os.path.join(work, "tmp_disk"), size="1m") as disk:
            disk.fill()
            with _environment(tempdir=disk.path):
                summary = _collect(modules, out)
            errors = [o.error for p in _by_module(out).values() for o in p.results.values()]
            every_module_failed = sorted(summary["failed_modules"]) == sorted(m.name for m in modules)
            said = all("No space left on device" in e for e in errors) and errors
            disk.free()
            leftovers = os.listdir(disk.path)
        with local.LocalExecutor(1) as executor:
            collection.collect(
                modules,
                policies.parse_all(BASELINES),
                out,
                executor,
                max_exploration_steps=0,
                retry_failed=True,
                progress=False,
            )
        lost = _lost(injection.read_records(out), reference, [m.name for m in modules])
        return every_module_failed and bool(said) and leftovers == [] and lost == 0, lost

    if injection.can_mount_tmpfs():
        tally.attempt("disk", "compile-temporaries disk full", full_compile_temporaries_disk)

    def read_only_output():
        with injection.FillableDisk(os.path.join(work, "ro_disk")) as disk:
            out = os.path.join(disk.path, "out")
            _collect(modules[:2], out)
            committed = _files(out)
            disk.set_read_only(True)
            try:
                _collect(modules, out)
                raised = False
            except OSError as e:  # gin re-raises with its own message: the errno is in the text
                raised = "Read-only file system" in str(e)
            disk.set_read_only(False)
            lost = sum(committed.get(k) != v for k, v in _files(out).items() if k in committed)
            lost += len(set(committed) - set(_files(out)))
            _collect(modules, out)
            lost += _lost(injection.read_records(out), reference, [m.name for m in modules])
            return raised and lost == 0, lost

    if injection.can_mount_tmpfs():
        tally.attempt("disk", "output file system read-only", read_only_output)

    for damage in (b"", b"PK\x03\x04 half of an npz", b"\x93NUMPY garbage"):

        def damaged_cache(damage=damage):
            cache_dir = os.path.join(work, f"cache_{len(damage)}")
            _collect(modules[:2], os.path.join(cache_dir, "..", f"cache_fill_{len(damage)}"), cache_dir=cache_dir)
            for entry in glob.glob(os.path.join(cache_dir, "*", "*.npz")):
                with open(entry, "wb") as f:
                    f.write(damage)
            out = os.path.join(work, f"cache_out_{len(damage)}")
            summary = _collect(modules[:2], out, cache_dir=cache_dir)
            lost = _lost(injection.read_records(out), reference, [m.name for m in modules[:2]])
            return summary["failed_modules"] == [] and lost == 0, lost

        tally.attempt("storage", "compile-cache entries damaged", damaged_cache, repr(damage[:6]))

    def half_written():
        out = os.path.join(work, "half_written")
        _collect(modules[:1], out)
        leftovers = injection.plant_half_written(out, modules[1].name, "x")
        _collect(modules, out)
        lost = _lost(injection.read_records(out), reference, [m.name for m in modules])
        return not any(map(os.path.exists, leftovers)) and lost == 0, lost

    tally.attempt("storage", "half-written temporaries of a killed commit", half_written)

    def damaged_profile():
        out = os.path.join(work, "damaged_profile")
        _collect(modules[:2], out)
        path = os.path.join(out, collection.PROFILES_DIR, collection.module_key(modules[0].name) + ".json")
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        committed = _files(out)
        try:
            _collect(modules, out)
            return False, 0
        except ValueError as e:
            lost = int(_files(out) != committed)
            return path in str(e) and "delete it" in str(e) and lost == 0, lost

    tally.attempt("storage", "per-module profile truncated", damaged_profile)

    def damaged_shard(step):
        from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib

        directory = os.path.join(work, f"shards_{step}")
        files = trajectory_records.write_heuristic_shards(
            os.path.join(directory, "data"), shards=2, modules_per_shard=3
        )
        vocab = os.path.join(directory, "vocab")
        generate_vocab_lib.generate_vocab(files, vocab, generate_vocab_lib.VocabConfig(num_buckets=50))
        root = os.path.join(directory, "model")
        small = dict(batch_size=32, hidden_units=(8,), shuffle_buffer_size=256, checkpoint_interval=10)
        if step == "training":
            trainer_lib.train(files, vocab, root, config=trainer_lib.TrainerConfig(num_steps=10, **small))
        committed = {k: v for k, v in _files(root).items() if not k.startswith("train/")}
        with open(files[1], "r+b") as f:
            f.seek(os.path.getsize(files[1]) // 2)
            f.write(b"\xff\x00\xff")
        try:
            if step == "training":
                trainer_lib.train(files, vocab, root, config=trainer_lib.TrainerConfig(num_steps=20, **small))
            else:
                generate_vocab_lib.generate_vocab(files, os.path.join(directory, "vocab2"))
            return False, 0
        except trajectory_dataset.TrajectoryError as e:
            lost = int({k: v for k, v in _files(root).items() if not k.startswith("train/")} != committed)
            return files[1] in str(e) and lost == 0, lost

    for step in ("vocab", "training"):
        tally.attempt("storage", f"trajectory shard damaged (read by {step})", lambda step=step: damaged_shard(step))


# --- tools ------------------------------------------------------------------------------------------------------


def tool_faults(tally, modules, work):
    tools = ("clang-22", "llvm-size-22")
    for missing in tools:
        for run in ("collection", "collection with cache", "evaluation"):

            def scenario(missing=missing, run=run):
                name = f"tools_{missing}_{run.replace(' ', '_')}"
                path_dir = os.path.join(work, name, "path")
                os.makedirs(path_dir)
                for other in set(tools) - {missing}:
                    os.symlink(shutil.which(other), os.path.join(path_dir, other))
                out = os.path.join(work, name, "out")
                with _environment(path_only=path_dir):
                    try:
                        if run == "evaluation":
                            with local.LocalExecutor(1) as executor:
                                evaluate_policy_lib.evaluate(
                                    modules, policies.parse("heuristic"), executor, progress=False
                                )
                        else:
                            cache = os.path.join(work, name, "cache") if "cache" in run else None
                            _collect(modules, out, cache_dir=cache)
                        return False, 0
                    except task_lib.ToolError as e:
                        committed = glob.glob(os.path.join(out, collection.PROFILES_DIR, "*.json"))
                        said = f"'{missing}' was not found" in str(e) and "apt-get install clang-22" in str(e)
                        return said and not committed, len(committed)

            tally.attempt("tools", f"{missing} missing", scenario, run)

    def no_saved_model_cli():
        name = "tensorflow.python.tools.saved_model_cli"
        saved = sys.modules.get(name, "absent")
        sys.modules[name] = None
        try:
            export_model_lib.aot_compile(os.path.join(work, "nowhere"), os.path.join(work, "aot"), "x86_64-pc-linux")
            return False, 0
        except export_model_lib.ExportError as e:
            return "make setup" in str(e), 0
        finally:
            if saved == "absent":
                del sys.modules[name]
            else:
                sys.modules[name] = saved

    tally.attempt("tools", "saved_model_cli missing", no_saved_model_cli)

    def no_inlining_default():
        bin_dir = os.path.join(work, "no_default_bin")
        injection.write_fake_clang(bin_dir, "no_default")
        out = os.path.join(work, "no_default_out")
        with _environment(path_first=bin_dir):
            try:
                _collect(modules, out)
                return False, 0
            except env.FeatureMismatchError as e:
                committed = glob.glob(os.path.join(out, collection.PROFILES_DIR, "*.json"))
                return "Use clang-22" in str(e) and not committed, len(committed)

    tally.attempt("tools", "a clang that does not send inlining_default", no_inlining_default)


# --- policies ---------------------------------------------------------------------------------------------------


def _damaged_copy(policy_dir: str, target: str, relative: str) -> str:
    """A copy of the saved policy `policy_dir` with its file `relative` cut to half; returns the copy."""
    shutil.copytree(policy_dir, target)
    injection.truncate_file(os.path.join(target, relative))
    return target


def policy_faults(tally, modules, work):
    good = injection.write_policy_needing(os.path.join(work, "good_policy"), "callee_users")
    bad = {
        "wrong signature": injection.write_wrong_signature_policy(os.path.join(work, "wrong_signature")),
        "NaN outputs": injection.write_nan_policy(os.path.join(work, "nan_policy")),
        "saved_model.pb truncated": _damaged_copy(good, os.path.join(work, "cut_pb"), "saved_model.pb"),
        "variables truncated": _damaged_copy(
            good, os.path.join(work, "cut_variables"), os.path.join("variables", "variables.data-00000-of-00001")
        ),
        "numpy sidecar truncated": _damaged_copy(
            good, os.path.join(work, "cut_sidecar"), saved_policy.FAST_POLICY_FILENAME
        ),
    }
    data_path = injection.copy_corpus(os.path.join(work, "policy_corpus"), modules[:2])
    for what, path in bad.items():

        def scenario(path=path, what=what):
            log = os.path.join(work, f"clang_{what.replace(' ', '_')}.log")
            bin_dir = os.path.join(work, f"bin_{what.replace(' ', '_')}")
            injection.write_fake_clang(bin_dir, "passthrough", log=log)
            output = os.path.join(work, f"eval_{what.replace(' ', '_')}")
            with _environment(path_first=bin_dir):
                proc = _run(
                    "compiler_opt.tools.evaluate_policy",
                    [f"--data_path={data_path}", f"--policy=saved:{path}", f"--output={output}", "--num_workers=1"],
                )
            refused = proc.returncode != 0 and "PolicyLoadError" in proc.stderr and path in proc.stderr
            return refused and not os.path.exists(log), 0

        tally.attempt("policy", f"saved policy: {what}", scenario, "refused by the evaluate_policy binary")

    def feature_mismatch():
        # A real exported policy reading `magic_feature`, as a baseline of a collection with the real clang-22.
        path = injection.write_policy_needing(os.path.join(work, "magic_policy"), "magic_feature")
        out = os.path.join(work, "magic_out")
        try:
            with local.LocalExecutor(1) as executor:
                collection.collect(
                    modules, policies.parse_all(["heuristic", f"saved:{path}"]), out, executor, progress=False
                )
            return False, 0
        except env.FeatureMismatchError as e:
            committed = glob.glob(os.path.join(out, collection.PROFILES_DIR, "*.json"))
            return "['magic_feature']" in str(e) and path in str(e) and not committed, 0

    tally.attempt("policy", "saved policy reads a feature clang-22 does not send", feature_mismatch)


def main(argv):
    del argv
    from compiler_opt.rl import make_default_corpus_lib

    logging.set_verbosity(logging.WARNING)
    start = time.monotonic()
    rng = random.Random(_SEED.value)
    by_name = {m.name: m for m in corpus.Corpus.load(make_default_corpus_lib.default_corpus_dir())}
    modules = [by_name[name] for name in injection.SMALL_MODULES[:4]]
    tally = Tally()
    fuzz = decoder_fuzz(rng, _FUZZ_STREAMS.value)
    with tempfile.TemporaryDirectory(prefix="bcmax-faults-") as work:
        reference = injection.read_records(_reference_dir(modules, os.path.join(work, "reference")))
        five = [by_name[name] for name in injection.SMALL_MODULES]
        sections = {
            "compiler": lambda: compiler_faults(tally, modules, reference, work, rng),
            "real_clang": lambda: real_clang_faults(tally, modules, reference, work, rng),
            "corpus": lambda: input_faults(tally, modules, reference, work),
            "storage": lambda: storage_faults(tally, modules, reference, work),
            "tools": lambda: tool_faults(tally, modules, work),
            "policy": lambda: policy_faults(tally, modules, work),
            "kill_collection": lambda: interruption_collection(tally, modules, work, rng, _COLLECTION_KILLS.value),
            "kill_training": lambda: interruption_training(tally, work, rng, _TRAINING_KILLS.value),
            "kill_loop": lambda: interruption_loop(tally, five, work, rng, _LOOP_KILLS.value),
        }
        for name, run in sections.items():
            if not _ONLY.value or name in _ONLY.value:
                run()
    print(
        json.dumps(
            {
                "benchmark": "faults",
                "seed": _SEED.value,
                "system_faults": tally.summary(),
                "decoder_fuzz": fuzz,
                "seconds": round(time.monotonic() - start, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    app.run(main)
