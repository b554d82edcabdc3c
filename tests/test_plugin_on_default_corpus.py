"""The exported plugin in a stock clang-22 decides as interactive mode does, on real modules of the default corpus.

A short training run (heuristic trajectories of ~30 small modules, behaviour cloning) gives a real policy; it is
exported, and every module is compiled twice from its `.cmd` at -Oz: with `-fpass-plugin=libbcmax_inliner.so`, and
in interactive mode answered by the same saved_policy (compiler_opt.rl.policies.SavedModelPolicy).
"""

import os
import subprocess

import pytest

# Modules of the default corpus whose bitcode size (bytes) is in this range: ~30 modules of every library, each
# compiling in well under a second.
_MIN_BC_BYTES, _MAX_BC_BYTES = 15_000, 60_000


@pytest.mark.integration
def test_plugin_sizes_equal_interactive_sizes_for_a_trained_policy(tmp_path):
    import tensorflow as tf

    from compiler_opt.rl import corpus, env, generate_vocab_lib, make_default_corpus_lib, policies
    from compiler_opt.rl.imitation_learning import training_weights, trajectories
    from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib
    from compiler_opt.rl.inlining import task as task_lib
    from compiler_opt.tools import export_model_lib

    modules = [
        m
        for m in corpus.Corpus.load(make_default_corpus_lib.default_corpus_dir())
        if _MIN_BC_BYTES <= m.size_bytes <= _MAX_BC_BYTES
    ]
    records = str(tmp_path / "trajectories.tfrecord")
    with tf.io.TFRecordWriter(records) as writer:
        for module in modules:
            result = env.compile_module(module, policies.parse("heuristic"))
            assert result.ok, result.error
            if result.horizon:
                writer.write(trajectories.to_sequence_example(result, label=0).SerializeToString())
    generate_vocab_lib.generate_vocab([records], str(tmp_path / "vocab"))
    trained = trainer_lib.train(
        [records],
        str(tmp_path / "vocab"),
        str(tmp_path / "train"),
        config=trainer_lib.TrainerConfig(
            num_steps=300, batch_size=256, hidden_units=(32, 32), summary_interval=100, checkpoint_interval=300
        ),
        weighting=training_weights.WeightingConfig(mode="uniform"),
    )
    plugin = os.path.join(str(tmp_path / "export"), export_model_lib.PLUGIN_FILENAME)
    export_model_lib.export_policy(trained.saved_policy_dir, str(tmp_path / "export"), bazel_package=False)

    policy = policies.SavedModelPolicy(trained.saved_policy_dir)
    task = task_lib.InliningForSizeTask()
    sizes, decisions = {}, []
    for module in modules:
        interactive = env.compile_module(module, policy)
        assert interactive.ok, interactive.error
        obj = str(tmp_path / "plugin.o")
        subprocess.run(module.command("clang-22", obj, (f"-fpass-plugin={plugin}",)), check=True)
        sizes[module.name] = (task.score(obj).text_size, interactive.text_size)
        decisions.extend(interactive.actions.tolist())
    assert len(sizes) >= 10
    assert 0 < sum(decisions) < len(decisions)
    assert {name: plugin for name, (plugin, _) in sizes.items()} == {name: ia for name, (_, ia) in sizes.items()}
