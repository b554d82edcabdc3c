"""The shipped model: packaging a trained policy (compiler_opt.tools.ship_model_lib) and the model committed in
models/inliner_size, which must be the very model bench/quality.py measured (docs/results/quality_corpus_v2_full.json).

Packaging runs on real SavedModels written by the trainer's exporter (tests/export_policy_fixtures.py).
"""

import json
import os
import shutil

import pytest

from tests import export_policy_fixtures
from tests.gin_test_base import GinTestCase

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(_ROOT, "models", "inliner_size")
QUALITY_JSON = os.path.join(_ROOT, "docs", "results", "quality_corpus_v2_full.json")


def _bc_max_run(root: str, best: int) -> dict[int, str]:
    """A bc_max --root_dir with two iterations whose policies differ (the first reads one feature fewer) and a
    results.json that chose `best`; returns {iteration: saved_policy dir}."""
    names = export_policy_fixtures.clang22_release_features()
    policies = {}
    for t, features in ((1, names[1:]), (2, names)):
        model_dir = os.path.join(root, f"iteration_{t}", "model")
        policies[t] = export_policy_fixtures.write_rule_policy(model_dir, features)
    rows = [
        {
            "iteration": t,
            "policy": "saved:" + policies[t],
            "parts": {"validation": {"ratio": 0.99 - t / 100, "oracle_ratio": 0.95, "modules": 7, "smaller": 3}},
        }
        for t in (1, 2)
    ]
    with open(os.path.join(root, "results.json"), "w") as f:
        json.dump({"iterations": rows, "best_iteration": best}, f)
    return policies


def test_a_run_ships_the_iteration_it_chose_on_validation_not_its_newest(tmp_path):
    from compiler_opt.rl import saved_policy
    from compiler_opt.tools import ship_model_lib

    policies = _bc_max_run(str(tmp_path / "run"), best=1)
    out = str(tmp_path / "shipped")

    provenance = ship_model_lib.ship(str(tmp_path / "run"), out)

    shipped_policy = os.path.join(out, "saved_policy")
    assert saved_policy.saved_model_digest(shipped_policy) == saved_policy.saved_model_digest(policies[1])
    assert saved_policy.saved_model_digest(shipped_policy) != saved_policy.saved_model_digest(policies[2])
    collect = os.path.join(os.path.dirname(policies[1]), "collect_policy")
    assert saved_policy.saved_model_digest(os.path.join(out, "collect_policy")) == saved_policy.saved_model_digest(
        collect
    ), "MLGO's layout: the collect_policy beside it ships too"
    assert provenance.iteration == 1
    assert provenance.source == os.path.join("iteration_1", "model", "saved_policy")
    assert provenance.results == {"validation": {"ratio": 0.98, "oracle_ratio": 0.95, "modules": 7}}
    assert ship_model_lib.check_shipped(out) == provenance
    # The copy is a policy the numpy path plays (its sidecar belongs to it).
    assert saved_policy.SavedPolicy.load(shipped_policy).uses_fast_path


def test_shipping_again_replaces_the_whole_directory(tmp_path):
    from compiler_opt.tools import ship_model_lib

    policies = _bc_max_run(str(tmp_path / "run"), best=2)
    out = str(tmp_path / "shipped")
    ship_model_lib.ship(policies[1], out)
    with open(os.path.join(out, "saved_policy", "stray.txt"), "w") as f:
        f.write("left by an older model")

    provenance = ship_model_lib.ship(str(tmp_path / "run"), out)

    assert not os.path.exists(os.path.join(out, "saved_policy", "stray.txt"))
    assert provenance.iteration == 2
    assert sorted(os.listdir(tmp_path)) == ["run", "shipped"], "no temporary left beside the output"


def test_a_policy_without_a_valid_numpy_sidecar_is_refused_with_the_file_named(tmp_path):
    from compiler_opt.rl import saved_policy
    from compiler_opt.tools import ship_model_lib

    policies = _bc_max_run(str(tmp_path / "run"), best=2)
    os.remove(os.path.join(policies[2], saved_policy.FAST_POLICY_FILENAME))
    shutil.copy(os.path.join(policies[1], saved_policy.FAST_POLICY_FILENAME), policies[2])

    with pytest.raises(
        ship_model_lib.ShipError, match=r"fast_policy\.npz is missing or was written for another SavedModel"
    ):
        ship_model_lib.ship(str(tmp_path / "run"), str(tmp_path / "shipped"))
    assert not os.path.exists(tmp_path / "shipped")


def test_a_shipped_model_whose_weights_were_replaced_fails_the_check(tmp_path):
    from compiler_opt.tools import ship_model_lib

    policies = _bc_max_run(str(tmp_path / "run"), best=2)
    out = str(tmp_path / "shipped")
    ship_model_lib.ship(policies[2], out)
    shutil.rmtree(os.path.join(out, "saved_policy", "variables"))
    shutil.copytree(os.path.join(policies[1], "variables"), os.path.join(out, "saved_policy", "variables"))

    with pytest.raises(ship_model_lib.ShipError, match="is not the model .*model.json describes"):
        ship_model_lib.check_shipped(out)


def test_a_run_without_results_json_is_refused_rather_than_shipping_its_newest_iteration(tmp_path):
    """A run directory whose results.json is missing (unfinished, or written by a tool that does not write it) does
    not say which iteration validation chose: shipping it fails, naming the file."""
    from compiler_opt.tools import ship_model_lib

    _bc_max_run(str(tmp_path / "run"), best=1)
    os.remove(tmp_path / "run" / "results.json")

    with pytest.raises(ship_model_lib.ShipError, match="has no results.json naming the iteration chosen"):
        ship_model_lib.ship(str(tmp_path / "run"), str(tmp_path / "shipped"))
    assert not os.path.exists(tmp_path / "shipped")


def test_the_committed_model_is_the_model_the_quality_bench_measured():
    """models/inliner_size holds the policy bench/quality.py chose on validation in the full run of
    docs/results/quality_corpus_v2_full.json: same SavedModel digest, and a sidecar that belongs to it."""
    from compiler_opt.tools import ship_model_lib

    provenance = ship_model_lib.check_shipped(SHIPPED)
    with open(QUALITY_JSON) as f:
        quality = json.load(f)

    assert provenance.saved_model_sha256 == quality["best"]["saved_model_sha256"]
    assert provenance.iteration == quality["best_iteration_on_validation"]
    assert provenance.results["validation"]["ratio"] == pytest.approx(quality["best"]["validation_ratio"], abs=0)


def test_the_committed_model_reads_exactly_the_features_clang22_sends():
    from compiler_opt.rl import saved_policy

    sent = set(export_policy_fixtures.clang22_release_features())
    policy = saved_policy.SavedPolicy.load(os.path.join(SHIPPED, "saved_policy"), available_features=sent)

    assert policy.uses_fast_path
    assert set(policy.feature_names) == sent


class DemoConfigTest(GinTestCase):
    def test_the_demo_clones_with_the_shipped_model_among_its_baselines(self):
        """`make demo` (gin_configs/demo.gin, run from the repository root) adds the shipped model to the heuristic
        baselines, and that path holds a policy the numpy path plays."""
        import gin

        from compiler_opt import gin_setup
        from compiler_opt.rl import policies
        from compiler_opt.rl.imitation_learning import bc_max_lib  # noqa: F401 (registers bc_max.run)

        cwd = os.getcwd()
        os.chdir(_ROOT)
        try:
            gin_setup.parse(["gin_configs/demo.gin", "gin_configs/splits_v2.gin"], [], log=False)
            baselines = policies.parse_all(gin.query_parameter("bc_max.run.baselines"))
        finally:
            os.chdir(cwd)

        learned = [p for p in baselines if isinstance(p, policies.SavedModelPolicy)]
        self.assertEqual([p.path for p in learned], [os.path.join(SHIPPED, "saved_policy")])
        self.assertIn("heuristic", [p.name for p in baselines])
        self.assertTrue(learned[0].model.uses_fast_path)
