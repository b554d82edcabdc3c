"""The model measured is the model shipped: on real modules of the default corpus, a trained policy's numpy path, its
TF SavedModel and its exported plugin in a stock clang-22 take the same decisions and give byte-identical objects.

A short training run (heuristic trajectories of ~30 small modules, behaviour cloning) gives a real policy; it is
exported, and every module is compiled from its `.cmd` at -Oz three ways (compiler_opt.tools.shipped_model_lib).
bench/plugin.py runs the same check on the whole default corpus.
"""

import os
import shutil

import numpy as np
import pytest

# Modules of the default corpus whose bitcode size (bytes) is in this range: ~30 modules of every library, each
# compiling in well under a second.
_MIN_BC_BYTES, _MAX_BC_BYTES = 15_000, 60_000

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def modules(default_corpus):
    from compiler_opt.rl import corpus

    return [m for m in corpus.Corpus.load(default_corpus) if _MIN_BC_BYTES <= m.size_bytes <= _MAX_BC_BYTES]


@pytest.fixture(scope="module")
def trained(modules, tmp_path_factory):
    """(saved_policy dir, exported plugin) of a policy cloned from the heuristic on `modules`."""
    import tensorflow as tf

    from compiler_opt.rl import env, generate_vocab_lib, policies
    from compiler_opt.rl.imitation_learning import training_weights, trajectories
    from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib
    from compiler_opt.tools import export_model_lib

    tmp = tmp_path_factory.mktemp("trained")
    records = str(tmp / "trajectories.tfrecord")
    with tf.io.TFRecordWriter(records) as writer:
        for module in modules:
            result = env.compile_module(module, policies.parse("heuristic"))
            assert result.ok, result.error
            if result.horizon:
                writer.write(trajectories.to_sequence_example(result, label=0).SerializeToString())
    generate_vocab_lib.generate_vocab([records], str(tmp / "vocab"))
    result = trainer_lib.train(
        [records],
        str(tmp / "vocab"),
        str(tmp / "train"),
        config=trainer_lib.TrainerConfig(
            num_steps=300, batch_size=256, hidden_units=(32, 32), summary_interval=100, checkpoint_interval=300
        ),
        weighting=training_weights.WeightingConfig(mode="uniform"),
    )
    export_model_lib.export_policy(result.saved_policy_dir, str(tmp / "export"), bazel_package=False)
    return result.saved_policy_dir, str(tmp / "export" / export_model_lib.PLUGIN_FILENAME)


def _check(modules, policy, plugin):
    from compiler_opt.distributed import local
    from compiler_opt.tools import shipped_model_lib

    with local.LocalExecutor(2) as executor:
        return shipped_model_lib.check(modules, policy, plugin, executor)


def test_numpy_path_savedmodel_and_plugin_give_identical_objects_and_decisions(modules, trained):
    policy, plugin = trained
    checks, summary = _check(modules, policy, plugin)

    assert summary.modules_total == len(modules) >= 10
    assert summary.modules_failed == ()
    assert 0 < summary.inlined < summary.decisions, "the policy must take both decisions, or equality proves little"
    assert summary.plugin_objects_differ == () and summary.saved_model_objects_differ == ()
    assert summary.modules_identical == len(modules)
    assert summary.differing_outside_ties == 0
    assert summary.agree


def test_a_numpy_path_that_decides_otherwise_is_caught(modules, trained, tmp_path):
    """A sidecar whose output bias favours inlining (valid for its SavedModel, so the numpy path is used) no longer
    matches the SavedModel or the plugin: the check reports the differing decisions and objects."""
    from compiler_opt.rl import saved_policy

    policy, plugin = trained
    tampered = str(tmp_path / "saved_policy")
    shutil.copytree(policy, tampered)
    sidecar = os.path.join(tampered, saved_policy.FAST_POLICY_FILENAME)
    params = saved_policy.FastPolicyParams.load(sidecar)
    biases = list(params.biases)
    biases[-1] = biases[-1] + np.array([0.0, 5.0], np.float32)
    saved_policy.FastPolicyParams(
        params.normalization, params.kernels, tuple(biases), params.activation, params.saved_model_sha256
    ).save(sidecar)

    _, summary = _check(modules[:6], tampered, plugin)

    assert summary.differing_outside_ties > 0
    assert summary.modules_identical < summary.modules_total
    assert len(summary.plugin_objects_differ) > 0
    assert not summary.agree


def test_the_shipped_model_decides_the_same_three_ways(modules, tmp_path):
    """models/inliner_size, what `make plugin` exports by default: its numpy path (what the quality figures play),
    its SavedModel and its plugin give byte-identical objects on every module."""
    from compiler_opt.tools import export_model_lib

    shipped = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "inliner_size")
    export_model_lib.export_policy(shipped, str(tmp_path / "export"), bazel_package=False)
    policy = os.path.join(shipped, "saved_policy")
    _, summary = _check(modules, policy, str(tmp_path / "export" / export_model_lib.PLUGIN_FILENAME))

    assert summary.modules_failed == ()
    assert 0 < summary.inlined < summary.decisions
    assert summary.modules_identical == summary.modules_total == len(modules)
    assert summary.differing_outside_ties == 0
    assert summary.agree
