"""On MLGO's 6-module fixture corpus (tests/testdata/mlgo/corpus), with the real clang-22: this project's collection
writes what MLGO wrote (records, profiles) when it plays what MLGO played, and MLGO's saved_policy is played by
collection (`saved:PATH`) and `evaluate_policy`, and AOT-compiled by `export_model` into a plugin that decides as
interactive mode does."""

import glob
import json
import os
import subprocess

import gin
import pytest

from tests.interop import mlgo_facts

pytestmark = pytest.mark.integration

_MLGO_POLICY = "saved:" + os.path.abspath(mlgo_facts.SAVED_POLICY)


def _modules():
    from compiler_opt.rl import corpus

    return list(corpus.Corpus.load(mlgo_facts.CORPUS))


def _parse_with_mlgos_spec(path):
    """{module: {list: values}} of every record in `path`, parsed with MLGO's imitation-learning spec."""
    import tensorflow as tf

    result = {}
    for raw in tf.data.TFRecordDataset(path):
        _, steps, _ = tf.io.parse_sequence_example(raw[tf.newaxis], sequence_features=mlgo_facts.il_parse_spec())
        values = {name: v[0].numpy().tolist() for name, v in steps.items()}
        module = values["module_name"][0].decode()
        assert set(values["module_name"]) == {module.encode()}
        result[module] = values
    return result


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Collection with the heuristic (what MLGO's fixture generator played) and MLGO's saved_policy as baselines,
    no exploration, with MLGO's size partitions for the labels."""
    from compiler_opt.distributed import local
    from compiler_opt.rl import policies
    from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as lib
    from compiler_opt.rl.imitation_learning import profiles

    out = str(tmp_path_factory.mktemp("collected"))
    gin.clear_config()
    gin.bind_parameter("profiles.size_bucket.partitions", mlgo_facts.PARTITIONS)
    try:
        with local.LocalExecutor(2) as executor:
            lib.collect(
                _modules(),
                policies.parse_all(["heuristic", _MLGO_POLICY]),
                out,
                executor,
                max_exploration_steps=0,
                progress=False,
            )
    finally:
        gin.clear_config()
    return out, {p.module: p for p in profiles.read_jsonl(os.path.join(out, lib.PROFILES_FILE))}


@pytest.fixture(scope="module")
def evaluated():
    """evaluate_policy's per-module results for MLGO's saved_policy: {module: ModuleEvaluation}."""
    from compiler_opt.distributed import local
    from compiler_opt.rl import evaluate_policy_lib, policies

    with local.LocalExecutor(1) as executor:
        evaluations, summary = evaluate_policy_lib.evaluate(
            _modules(), policies.parse(_MLGO_POLICY), executor, progress=False
        )
    return {e.module: e for e in evaluations}, summary


def test_heuristic_sizes_equal_mlgos_recorded_losses(collected):
    _, by_module = collected
    with open(mlgo_facts.PROFILE_POL) as f:
        recorded = {e["module_name"]: (e["loss"], e["horizon"]) for e in json.load(f)}
    ours = {name: by_module[name].results["heuristic"] for name in recorded}
    assert {name: (float(o.size), o.horizon) for name, o in ours.items()} == recorded
    assert by_module[mlgo_facts.NO_DECISION_MODULE].results["heuristic"].horizon == 0


def test_our_records_parse_with_mlgos_spec_and_equal_mlgos_records(collected):
    out, by_module = collected
    ours = {}
    for path in glob.glob(os.path.join(out, "records", "*.tfrecord")):
        ours.update(_parse_with_mlgos_spec(path))
    mlgo = _parse_with_mlgos_spec(mlgo_facts.RECORDS)
    assert sorted(ours) == sorted(mlgo) == sorted(name for name, _ in mlgo_facts.RECORD_HORIZONS)
    assert all(by_module[name].best == "heuristic" for name in ours), "the records compared must be the heuristic's"
    for name in mlgo:
        assert ours[name] == mlgo[name], name


def test_our_mlgo_profiles_equal_mlgos_and_pol_holds_the_last_baseline(collected, evaluated):
    out, _ = collected
    with open(os.path.join(out, "profile_max.json")) as f:
        ours = json.load(f)
    with open(mlgo_facts.PROFILE_MAX) as f:
        mlgo = json.load(f)
    assert sorted(ours, key=lambda e: e["module_name"]) == sorted(mlgo, key=lambda e: e["module_name"])
    with open(os.path.join(out, "profile_pol.json")) as f:
        pol = {e["module_name"]: e["loss"] for e in json.load(f)}
    by_module, _ = evaluated
    assert pol == {name: float(by_module[name].policy_size) for name in pol}


def test_evaluate_policy_plays_mlgos_saved_policy_through_its_savedmodel(collected, evaluated):
    from compiler_opt.rl import saved_policy

    assert not saved_policy.SavedPolicy.load(mlgo_facts.SAVED_POLICY).uses_fast_path
    by_module, summary = evaluated
    assert (summary.modules, summary.evaluated, summary.failures) == (6, 6, 0)
    _, collected_profiles = collected
    # The same policy played by collection and by evaluation: same sizes, same number of decisions.
    for name, evaluation in by_module.items():
        outcome = collected_profiles[name].results[_MLGO_POLICY]
        assert (evaluation.policy_size, evaluation.horizon) == (outcome.size, outcome.horizon), name
    # MLGO's policy (400 steps, a format fixture) is not the heuristic: some module gets another size than -Oz.
    assert summary.smaller + summary.larger > 0


def test_export_model_compiles_mlgos_saved_policy_into_a_plugin_that_decides_as_interactive_mode(evaluated, tmp_path):
    from compiler_opt.rl.inlining import task as task_lib
    from compiler_opt.tools import export_model_lib

    output_dir = str(tmp_path / "export")
    manifest = export_model_lib.export_policy(mlgo_facts.SAVED_POLICY, output_dir, bazel_package=False)
    # MLGO's policy accepts `inlining_default` but does not read it; release mode does not compute it.
    assert set(manifest.features) == set(mlgo_facts.FEATURES) - {"inlining_default"}
    plugin = os.path.join(output_dir, export_model_lib.PLUGIN_FILENAME)
    task = task_lib.InliningForSizeTask()
    by_module, _ = evaluated
    plugin_sizes = {}
    for module in _modules():
        obj = str(tmp_path / "plugin.o")
        subprocess.run(module.command("clang-22", obj, (f"-fpass-plugin={plugin}",)), check=True)
        plugin_sizes[module.name] = task.score(obj).text_size
    assert plugin_sizes == {name: e.policy_size for name, e in by_module.items()}
