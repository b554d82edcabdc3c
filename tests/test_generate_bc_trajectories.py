"""Specification of BC-MAX trajectory collection on real modules of the default corpus with real clang-22."""

import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from compiler_opt.distributed import local
from compiler_opt.rl import corpus, env, policies
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as lib
from compiler_opt.rl.imitation_learning import profiles, trajectories

pytestmark = pytest.mark.integration

BASELINES = ("heuristic", "heuristic:threshold=50", "heuristic:threshold=500")


@pytest.fixture(scope="module")
def small_modules(default_corpus):
    """Eight small real modules (C and C++) with decisions: fast, yet not trivial."""
    modules = sorted(corpus.Corpus.load(default_corpus), key=lambda m: m.size_bytes)
    return modules[len(modules) // 4 : len(modules) // 4 + 8]


@pytest.fixture(scope="module")
def collected(small_modules, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("collected"))
    with local.LocalExecutor(2) as executor:
        summary = lib.collect(
            small_modules, policies.parse_all(BASELINES), out, executor, max_exploration_steps=1, progress=False
        )
    return out, summary


def _records(out):
    context_spec, sequence_spec = trajectories.parsing_spec(_feature_names(out))
    result = {}
    for path in sorted(glob.glob(os.path.join(out, "records", "*.tfrecord"))):
        for raw in tf.data.TFRecordDataset(path):
            context, sequence, _ = tf.io.parse_sequence_example(
                raw[tf.newaxis], context_features=context_spec, sequence_features=sequence_spec
            )
            name = context["module_name"][0].numpy().decode()
            assert name not in result
            result[name] = {k: v[0].numpy() for k, v in sequence.items()}
    return result


def _feature_names(out):
    path = glob.glob(os.path.join(out, "records", "*.tfrecord"))[0]
    raw = next(iter(tf.data.TFRecordDataset(path)))
    example = tf.train.SequenceExample.FromString(raw.numpy())
    return [k for k in example.feature_lists.feature_list if k not in trajectories.NON_FEATURE_LISTS]


def test_each_selected_trajectory_is_the_smallest_of_all_compiles(collected, small_modules):
    out, summary = collected
    for profile in profiles.read_jsonl(os.path.join(out, "profiles.jsonl")):
        sizes = [o.size for o in profile.results.values() if o.ok]
        assert set(BASELINES) <= set(profile.results)
        assert profile.best_size == min(sizes)
        assert profile.results[profile.best].size == profile.best_size
    # The -Oz total is the stock compiler's (plain `clang-22 -Oz`, no host), and on these modules some baseline or
    # exploration beats it somewhere: the oracle is strictly smaller.
    stock = {m.name: env.compile_plain(m).text_size for m in small_modules}
    assert summary["oz_total"] == sum(stock.values())
    assert summary["oracle_total"] < summary["oz_total"]


def test_the_oracle_divides_by_stock_clang_even_when_the_oz_heuristic_is_no_baseline(small_modules, tmp_path):
    modules = small_modules[:2]
    out = str(tmp_path / "out")
    with local.LocalExecutor(1) as executor:
        summary = lib.collect(
            modules, [policies.parse("heuristic:threshold=500")], out, executor, max_exploration_steps=0, progress=False
        )
    stock = {m.name: env.compile_plain(m).text_size for m in modules}

    assert {p.module: p.oz_size for p in profiles.read_jsonl(os.path.join(out, "profiles.jsonl"))} == stock
    assert summary["oz_total"] == sum(stock.values())
    assert summary["oracle_ratio"] > 1.0  # threshold 500 inlines more than -Oz: larger than stock on these modules


def test_records_parse_with_the_feature_spec_and_carry_the_reward(collected):
    out, _ = collected
    records = _records(out)
    by_module = {p.module: p for p in profiles.read_jsonl(os.path.join(out, "profiles.jsonl"))}
    assert records and set(records) == {m for m, p in by_module.items() if p.record}
    for name, seq in records.items():
        horizon = len(seq["action"])
        assert len(seq["inlining_default"]) == horizon == by_module[name].results[by_module[name].best].horizon
        assert (seq["reward"] == by_module[name].best_size).all()
        assert (seq["label"] == by_module[name].label).all()


def test_replaying_a_record_reproduces_its_size(collected, small_modules):
    out, _ = collected
    records = _records(out)
    by_module = {p.module: p for p in profiles.read_jsonl(os.path.join(out, "profiles.jsonl"))}
    modules = {m.name: m for m in small_modules}
    for name, seq in records.items():
        best = by_module[name].best
        base = policies.parse(best.split("+")[0])
        replay = policies.ReplayPolicy(tuple(int(a) for a in seq["action"][:, 0]), then=base)
        result = env.compile_module(modules[name], replay)
        assert result.text_size == by_module[name].best_size, name


def test_cached_compiles_are_reused_with_identical_results(small_modules, tmp_path):
    cache = str(tmp_path / "cache")
    runs = []
    for i in range(2):
        with local.LocalExecutor(1) as executor:
            runs.append(
                lib.collect(
                    small_modules[:2],
                    policies.parse_all(BASELINES[:2]),
                    str(tmp_path / f"out{i}"),
                    executor,
                    cache_dir=cache,
                    progress=False,
                )
            )
    assert runs[0]["compiles_now"] > 0 and runs[1]["compiles_now"] == 0
    assert _records(str(tmp_path / "out0")).keys() == _records(str(tmp_path / "out1")).keys()
    assert runs[0]["oracle_total"] == runs[1]["oracle_total"]


def test_with_a_minimum_gain_small_wins_record_the_heuristics_trajectory(small_modules, tmp_path):
    """label_min_gain = 0.5: no baseline is half the heuristic's size, so every record is the heuristic's own
    trajectory (replaying it reproduces the heuristic's size), while `best` and the oracle stay the smallest."""
    cache = str(tmp_path / "cache")
    runs = {}
    for gain in (0.0, 0.5):
        out = str(tmp_path / f"gain{gain}")
        with local.LocalExecutor(2) as executor:
            summary = lib.collect(
                small_modules,
                policies.parse_all(BASELINES),
                out,
                executor,
                max_exploration_steps=0,
                cache_dir=cache,
                progress=False,
                label_min_gain=gain,
            )
        runs[gain] = (summary, {p.module: p for p in profiles.read_jsonl(os.path.join(out, "profiles.jsonl"))}, out)
    plain, gated = runs[0.0], runs[0.5]
    assert gated[0]["oracle_total"] == plain[0]["oracle_total"]
    # On these modules some threshold beats the heuristic, so the gate changes something.
    assert any(p.best != "heuristic" for p in gated[1].values())
    records = _records(gated[2])
    modules = {m.name: m for m in small_modules}
    for name, profile in gated[1].items():
        assert profile.best == plain[1][name].best and profile.best_size == plain[1][name].best_size
        if profile.record is None:
            continue
        assert profile.recorded == "heuristic"
        replay = policies.ReplayPolicy(
            tuple(int(a) for a in records[name]["action"][:, 0]), then=policies.HeuristicPolicy()
        )
        result = env.compile_module(modules[name], replay)
        assert result.text_size == profile.results["heuristic"].size, name
        assert (records[name]["reward"] == profile.results["heuristic"].size).all()
    assert all(p.recorded == p.best for p in plain[1].values() if p.record is not None)


def _cli(data_path, out, *extra):
    return [
        sys.executable,
        "-m",
        "compiler_opt.rl.imitation_learning.generate_bc_trajectories",
        f"--data_path={data_path}",
        f"--output_dir={out}",
        "--num_workers=1",
        "--gin_bindings=generate_bc_trajectories.collect.progress=False",
        "--gin_bindings=generate_bc_trajectories.collect.max_exploration_steps=1",
        *extra,
    ]


@pytest.fixture(scope="module")
def resume_corpus(small_modules, tmp_path_factory):
    """A corpus of the small modules (the CLI reads a corpus directory)."""
    root = tmp_path_factory.mktemp("resume_corpus")
    names = []
    for m in small_modules:
        src_bc = m.bc_path
        dst = root / (m.name + ".bc")
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(src_bc, dst)
        os.link(src_bc[: -len(".bc")] + ".cmd", str(dst)[: -len(".bc")] + ".cmd")
        names.append(m.name)
    corpus.write_corpus_description(str(root), names)
    return str(root)


def _compilers_reading(path, within_s):
    """Pids of processes whose command line mentions `path`, after waiting up to `within_s` for them to go."""
    deadline = time.monotonic() + within_s
    while True:
        pids = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if path.encode() in f.read():
                        pids.append(int(pid))
            except OSError:
                continue
        if not pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def test_killed_collection_resumes_to_the_records_of_an_uninterrupted_run(resume_corpus, tmp_path):
    reference = str(tmp_path / "reference")
    subprocess.run(_cli(resume_corpus, reference), check=True, capture_output=True)

    interrupted = str(tmp_path / "interrupted")
    proc = subprocess.Popen(
        _cli(resume_corpus, interrupted), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    profiles_dir = os.path.join(interrupted, "profiles")
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.isdir(profiles_dir) and len(os.listdir(profiles_dir)) >= 3:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _compilers_reading(resume_corpus, within_s=5.0) == [], "a compiler outlived the killed collector"
    done_before = len([n for n in os.listdir(profiles_dir) if n.endswith(".json")])
    assert done_before < len(os.listdir(reference + "/profiles")), "the run finished before it could be killed"

    subprocess.run(_cli(resume_corpus, interrupted), check=True, capture_output=True)
    got, want = _records(interrupted), _records(reference)
    assert got.keys() == want.keys()
    for name in want:
        for key in want[name]:
            np.testing.assert_array_equal(got[name][key], want[name][key], err_msg=f"{name}:{key}")
    assert [n for n in os.listdir(os.path.join(interrupted, "records")) if n.startswith(".tmp-")] == []
