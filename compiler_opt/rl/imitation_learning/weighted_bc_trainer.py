"""Trains the inlining policy by weighted behaviour cloning (BC-MAX's learning step) and exports it.

Usage:
  python -m compiler_opt.rl.imitation_learning.weighted_bc_trainer \
      --trajectories='collect/records/*.tfrecord' --vocab_dir=collect/vocab --root_dir=train \
      --profiles=collect/profiles.jsonl --gin_files=gin_configs/weighted_bc_trainer.gin

Input: TFRecord shards of trajectory SequenceExamples and `profiles.jsonl` (docs/CONTRACTS.md), a vocab dir of
`<feature>.buckets` files. Output: root_dir/saved_policy and root_dir/collect_policy (MLGO layout), checkpoints/,
TensorBoard summaries in train/, training_summary.json. Rerunning the same command resumes from the last checkpoint.
"""

from absl import app, flags, logging

from compiler_opt import console, gin_setup
from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib

_TRAJECTORIES = flags.DEFINE_list("trajectories", None, "TFRecord files or glob patterns, comma-separated.")
_VOCAB_DIR = flags.DEFINE_string("vocab_dir", None, "Directory of <feature>.buckets quantile files.")
_ROOT_DIR = flags.DEFINE_string("root_dir", None, "Output directory (checkpoints, summaries, policies).")
_PROFILES = flags.DEFINE_list(
    "profiles",
    None,
    "profiles.jsonl for size-bucket weights, or MLGO's profile files in pairs (X_pol.json,X_max.json); "
    "uniform weights if unset.",
)
_REGRET_POLICIES = flags.DEFINE_list(
    "regret_policies", None, "Policies whose regret sets the weights (default: every saved:... in the profiles)."
)
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings overriding the files.")


def main(argv):
    del argv
    if _ROOT_DIR.value:
        console.log_to_file(_ROOT_DIR.value, "weighted_bc_trainer")
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    result = weighted_bc_trainer_lib.train(
        _TRAJECTORIES.value,
        _VOCAB_DIR.value,
        _ROOT_DIR.value,
        profiles_path=_PROFILES.value,
        regret_policies=_REGRET_POLICIES.value,
    )
    logging.info("Trained %d steps; policy in %s; metrics %s", result.steps, result.saved_policy_dir, result.metrics)


def run():
    flags.mark_flags_as_required(["trajectories", "vocab_dir", "root_dir"])
    app.run(main)


if __name__ == "__main__":
    run()
