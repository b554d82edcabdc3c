"""The BC-MAX loop binary on real modules with tiny budgets: one iteration end to end and its resumption; two
iterations, where the first learned policy becomes a baseline, guides exploration and its regret sets the weights."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bench.testkit.injection import TINY_LOOP_BINDINGS as _TINY_LOOP_BINDINGS
from compiler_opt import console
from compiler_opt.rl import corpus, env, evaluate_policy_lib, policies, saved_policy, splits
from compiler_opt.rl.imitation_learning import bc_max_lib, profiles
from tests.gin_test_base import GinTestCase

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.integration


def _bc_max(data_path, root_dir, *bindings):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler_opt.rl.imitation_learning.bc_max",
            f"--data_path={data_path}",
            f"--root_dir={root_dir}",
            "--max_modules=8",
            "--iterations=1",
            "--max_exploration_steps=1",
            "--num_workers=2",
            "--gin_files=gin_configs/bc_max.gin",
            "--gin_bindings=weighted_bc.TrainerConfig.num_steps=50",
            "--gin_bindings=generate_bc_trajectories.collect.progress=False",
            "--gin_bindings=evaluate_policy.evaluate.progress=False",
            "--gin_bindings=bc_max.run.progress=False",
            *(f"--gin_bindings={b}" for b in bindings),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=os.path.join(os.path.dirname(__file__), ".."),
    )


# What must not reach a newcomer's console: error-level lines that are not errors (TensorFlow's C++ `E` lines, absl's
# `E1201 ...` records), Gym's banner, the gin config dump and TensorFlow's INFO records.
_NOISE = re.compile(r"^(\S+ \S+: [EWI] |[EI]\d{4} |Gym has been unmaintained|# Parameters for|INFO:tensorflow)", re.M)


def _assert_console_shows_steps_only(run, root):
    """The console (progress bars are off here) has one line per step and nothing of _NOISE; the log file has all."""
    assert _NOISE.findall(run.stderr) == []
    steps = run.stderr.splitlines()
    assert any(line.startswith("iteration 1: training") for line in steps), run.stderr
    assert any(re.match(r"iteration 1: train \S+, validation \d\.\d{4}", line) for line in steps), run.stderr
    assert len(steps) <= 12, run.stderr
    with open(os.path.join(root, console.LOG_DIRNAME, "bc_max.INFO")) as f:
        log = f.read()
    assert "gin config:" in log and "run.iterations = 3" in log and "iteration 1: training" in log


def test_one_iteration_trains_exports_evaluates_reports_and_resumes_on_a_clean_console(default_corpus, tmp_path):
    root = str(tmp_path / "bcmax")
    first = _bc_max(default_corpus, root)
    _assert_console_shows_steps_only(first, root)
    assert "report.md" in first.stdout.splitlines()[-1]
    for title in ("train", "validation", "test: unseen codebases", "test: unseen files"):
        assert title in first.stdout, title
    for path in ("report.md", "results.json", "size_ratio.png", "size_change.png", "wins.png"):
        assert os.path.getsize(os.path.join(root, path)) > 0, path
    saved = os.path.join(root, "iteration_1", "model", "saved_policy")
    assert os.path.isfile(os.path.join(saved, "saved_model.pb"))
    assert os.path.isfile(os.path.join(saved, "output_spec.json"))
    result = bc_max_lib.IterationResult.read(os.path.join(root, "iteration_1", bc_max_lib.ITERATION_FILE))
    for part in splits.PARTS:
        figures = result.parts[part]
        assert figures.modules >= 1 and figures.ratio is not None, part

    second = _bc_max(default_corpus, root)
    table = first.stdout[first.stdout.index("BC-MAX, total text size") :]
    assert second.stdout.endswith(table)
    with open(os.path.join(root, "results.json")) as f:
        results = json.load(f)
    assert results["best_iteration"] == 1
    assert sorted(results["iterations"][0]["parts"]) == sorted(splits.PARTS)
    assert results["iterations"][0]["test_codebases"], "per-codebase test figures"


def test_with_two_candidates_the_iteration_keeps_the_seed_with_the_lowest_validation_ratio(default_corpus, tmp_path):
    root = str(tmp_path / "bcmax")
    _bc_max(default_corpus, root, "bc_max.run.candidates=2", "weighted_bc.TrainerConfig.seed=3")
    it_dir = os.path.join(root, "iteration_1")
    result = bc_max_lib.IterationResult.read(os.path.join(it_dir, bc_max_lib.ITERATION_FILE))
    # Seeds 3 and 4 (TrainerConfig.seed, then one more), each a different network, each judged on validation.
    assert sorted(result.candidates) == ["seed_3", "seed_4"]
    digests = {
        name: policies.parse(f"saved:{it_dir}/candidates/{name}/model/saved_policy").cache_id
        for name in result.candidates
    }
    assert len(set(digests.values())) == 2
    ratios = result.candidates
    assert all(r is not None for r in ratios.values())
    chosen = "seed_3" if ratios["seed_3"] <= ratios["seed_4"] else "seed_4"
    # The iteration's policy is that candidate's network, in the usual place, and measures the same on validation.
    assert result.policy == "saved:" + os.path.join(it_dir, "model", "saved_policy")
    assert policies.parse(result.policy).cache_id == digests[chosen]
    assert result.ratio(splits.VALIDATION) == ratios[chosen]
    with open(os.path.join(root, "results.json")) as f:
        assert json.load(f)["iterations"][0]["candidates"] == ratios


def _result(iteration, validation_ratio):
    part = bc_max_lib.PartFigures(
        modules=1, evaluated=1, ratio=None, oracle_ratio=None, geomean=None, smaller=0, larger=0
    )
    parts = {p: part for p in splits.PARTS}
    parts[splits.VALIDATION] = dataclasses.replace(part, ratio=validation_ratio)
    return bc_max_lib.IterationResult(
        iteration=iteration, policy="p", baselines=(), parts=parts, test_codebases=(), wins={}, seconds=0.0
    )


class ShouldStopTest(GinTestCase):
    def _results(self, *ratios):
        return [_result(i + 1, r) for i, r in enumerate(ratios)]

    def test_stops_when_the_validation_ratio_did_not_improve_within_patience(self):
        assert bc_max_lib._should_stop(self._results(0.99, 0.995), patience=1)
        assert not bc_max_lib._should_stop(self._results(0.99, 0.98), patience=1)
        assert not bc_max_lib._should_stop(self._results(0.99, 0.995), patience=2)
        assert bc_max_lib._should_stop(self._results(0.99, 0.995, 0.999), patience=2)


def _evaluation(module, oz, size):
    return evaluate_policy_lib.ModuleEvaluation(
        module=module, oz_size=oz, policy_size=size, horizon=1, status="ok" if size is not None else "failed"
    )


class ChooseCandidateTest(GinTestCase):
    def test_candidates_are_compared_on_the_modules_every_one_of_them_compiled(self):
        # "a" failed to compile the module where "b" loses; on its own modules "a" would look better (0.96 against
        # 1.075), but on the module both compiled "b" is smaller.
        chosen, ratios = bc_max_lib.choose_candidate(
            {
                "a": {"m1": _evaluation("m1", 100, 96), "m2": _evaluation("m2", 100, None)},
                "b": {"m1": _evaluation("m1", 100, 95), "m2": _evaluation("m2", 100, 120)},
            }
        )
        assert chosen == "b"
        assert ratios == {"a": pytest.approx(0.96), "b": pytest.approx(0.95)}

    def test_a_candidate_that_compiled_nothing_has_no_ratio_and_is_not_kept(self):
        chosen, ratios = bc_max_lib.choose_candidate(
            {
                "a": {"m1": _evaluation("m1", 100, None)},
                "b": {"m1": _evaluation("m1", 100, 130)},
            }
        )
        assert (chosen, ratios) == ("b", {"a": None, "b": pytest.approx(1.3)})

    def test_the_first_among_equal_candidates_is_kept(self):
        same = {"m1": _evaluation("m1", 200, 190)}
        assert bc_max_lib.choose_candidate({"x": same, "y": same, "z": same})[0] == "x"


# --- two iterations -----------------------------------------------------------------------------------------------

# Five small real modules of the default corpus (4 to 12 inlining decisions each).
_TINY_CORPUS = (
    "zstd/common/zstd_common",
    "brotli/enc/histogram",
    "brotli/enc/encoder_dict",
    "zstd/compress/hist",
    "brotli/common/transform",
)
_TWO_ITERATION_BASELINES = ("heuristic", "heuristic:threshold=500")


@dataclasses.dataclass(frozen=True)
class _GraphPolicy:
    """A saved policy decided by its TF SavedModel graph (not the numpy path the product uses to compile)."""

    model: object
    name: str = "saved-model-graph"
    extra_args: tuple = ()

    def new_episode(self, header):
        return lambda obs: int(self.model.action(obs.features))


@pytest.fixture(scope="module")
def two_iterations(default_corpus, tmp_path_factory):
    """Two BC-MAX iterations on a corpus of _TINY_CORPUS, each module in a size bucket of its own (partitions between
    their stock -Oz sizes); returns (root_dir, {module name: ModuleSpec}, {module name: stock -Oz size})."""
    by_name = {m.name: m for m in corpus.Corpus.load(default_corpus)}
    data_path = str(tmp_path_factory.mktemp("tiny_corpus"))
    for name in _TINY_CORPUS:
        bc_path, cmd_path = corpus.module_files(data_path, name)
        os.makedirs(os.path.dirname(bc_path), exist_ok=True)
        shutil.copyfile(by_name[name].bc_path, bc_path)
        shutil.copyfile(by_name[name].bc_path[: -len(".bc")] + ".cmd", cmd_path)
    corpus.write_corpus_description(data_path, list(_TINY_CORPUS))
    modules = {m.name: m for m in corpus.Corpus.load(data_path)}
    stock = {name: env.compile_plain(module).text_size for name, module in modules.items()}
    sizes = sorted(stock.values())
    assert len(set(sizes)) == len(sizes), stock
    partitions = tuple((a + b) // 2 for a, b in zip(sizes, sizes[1:], strict=False))
    root = str(tmp_path_factory.mktemp("two_iterations"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler_opt.rl.imitation_learning.bc_max",
            f"--data_path={data_path}",
            f"--root_dir={root}",
            "--iterations=2",
            "--max_exploration_steps=1",
            "--num_workers=2",
            *(f"--baselines={b}" for b in _TWO_ITERATION_BASELINES),
            "--gin_files=gin_configs/bc_max.gin",
            "--gin_bindings=bc_max.run.patience=5",
            f"--gin_bindings=profiles.size_bucket.partitions={partitions}",
            *(f"--gin_bindings={b}" for b in _TINY_LOOP_BINDINGS),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=_REPO,
        timeout=900,
    )
    return root, modules, stock


def _iteration(root, t):
    it_dir = bc_max_lib.iteration_dir(root, t)
    result = bc_max_lib.IterationResult.read(os.path.join(it_dir, bc_max_lib.ITERATION_FILE))
    trajectories = os.path.join(it_dir, "trajectories")
    module_profiles = {p.module: p for p in profiles.read_jsonl(os.path.join(trajectories, "profiles.jsonl"))}
    with open(os.path.join(it_dir, "model", "training_summary.json")) as f:
        training = json.load(f)
    return result, module_profiles, training


def test_iteration_two_adds_the_first_learned_policy_to_the_baselines(two_iterations):
    root, _, _ = two_iterations
    first, first_profiles, _ = _iteration(root, 1)
    second, second_profiles, _ = _iteration(root, 2)
    learned = "saved:" + os.path.join(root, "iteration_1", "model", "saved_policy")
    assert first.baselines == _TWO_ITERATION_BASELINES
    assert second.baselines == (*_TWO_ITERATION_BASELINES, learned)
    assert set(first_profiles) == set(second_profiles) and len(second_profiles) >= 3
    for profile in second_profiles.values():
        assert profile.results[learned].ok, profile.results[learned]
        assert learned not in first_profiles[profile.module].results


def test_the_learned_policy_sizes_in_the_profiles_are_its_real_sizes(two_iterations):
    root, modules, _ = two_iterations
    _, second_profiles, _ = _iteration(root, 2)
    path = os.path.join(root, "iteration_1", "model", "saved_policy")
    graph = _GraphPolicy(saved_policy.SavedPolicy.load(path, allow_fast_path=False))
    for name, profile in second_profiles.items():
        independent = env.compile_module(modules[name], graph)
        assert independent.ok, independent.error
        assert profile.results["saved:" + path].size == independent.text_size, name


def test_iteration_two_explores_where_the_learned_policy_is_least_sure(two_iterations):
    root, modules, _ = two_iterations
    _, second_profiles, _ = _iteration(root, 2)
    graph = saved_policy.SavedPolicy.load(
        os.path.join(root, "iteration_1", "model", "saved_policy"), allow_fast_path=False
    )
    explored = 0
    for name, profile in second_profiles.items():
        (exploration,) = [k for k in profile.results if k.endswith("+explore1")] or [None]
        if exploration is None:
            continue
        base = policies.parse(exploration[: -len("+explore1")])
        played = env.compile_module(modules[name], base)
        probs = graph.prob_inline_batch(played.features)
        step = int(np.argmin(np.abs(2.0 * probs - 1.0)))
        prefix = tuple(int(a) for a in played.actions[:step]) + (1 - int(played.actions[step]),)
        replayed = env.compile_module(modules[name], policies.ReplayPolicy(prefix, then=base))
        assert replayed.text_size == profile.results[exploration].size, (name, step)
        explored += 1
    assert explored >= 3


def test_iteration_two_weights_size_buckets_by_the_learned_policys_regret(two_iterations):
    root, _, stock = two_iterations
    _, first_profiles, first_training = _iteration(root, 1)
    _, second_profiles, second_training = _iteration(root, 2)
    learned = "saved:" + os.path.join(root, "iteration_1", "model", "saved_policy")
    # Iteration 1 has no learned policy: uniform weights.
    assert set(first_training["bucket_weights"]["weights"]) == {1.0}
    # Each module is alone in its size bucket, so a bucket's regret is one module's: learned size - smallest size.
    bucket_of = {name: rank for rank, name in enumerate(sorted(stock, key=stock.get))}
    regret = {}
    for name, profile in second_profiles.items():
        assert profile.label == bucket_of[name]
        smallest = min(o.size for o in profile.results.values() if o.ok)
        regret[bucket_of[name]] = profile.results[learned].size - smallest
    weights = second_training["bucket_weights"]["weights"]
    assert second_training["bucket_weights"]["policies"] == [learned]
    assert max(regret.values()) > 0, f"the learned policy is the best on every module: {regret}"
    # The bucket where the learned policy loses most gets the largest weight (1.0); more regret never less weight;
    # buckets without regret (or without train modules) share the smallest weight, below 1.
    worst = max(regret, key=regret.get)
    assert weights[worst] == 1.0 == max(weights)
    for a in regret:
        for b in regret:
            if regret[a] > regret[b]:
                assert weights[a] > weights[b], (regret, weights)
            if regret[a] == regret[b]:
                assert weights[a] == pytest.approx(weights[b]), (regret, weights)
    no_regret = [b for b in range(len(weights)) if regret.get(b, 0) == 0]
    assert no_regret and min(weights) < 1.0
    assert all(weights[b] == pytest.approx(min(weights)) for b in no_regret), (regret, weights)
