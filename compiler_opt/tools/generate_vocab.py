"""Generates the feature quantiles ("vocab") that normalize the policy's inputs, from trajectory records.

Usage:
  python -m compiler_opt.tools.generate_vocab \
      --input='collect/records/*.tfrecord' --output_dir=collect/vocab \
      [--num_buckets=1000]

Input: TFRecord shards of trajectory SequenceExamples (docs/CONTRACTS.md). Output: `<output_dir>/<feature>.buckets`
for every numeric feature list except `action` and `label`: one float per line, `--num_buckets` quantiles (default:
`generate_vocab.VocabConfig.num_buckets`, 1000). MLGO's records (`action` or `inlining_decision`) are read too.
"""

import dataclasses

from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.rl import generate_vocab_lib

_INPUT = flags.DEFINE_list("input", None, "TFRecord files or glob patterns, comma-separated.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Directory for the .buckets files (created if missing).")
_NUM_BUCKETS = flags.DEFINE_integer(
    "num_buckets", None, "Quantiles per feature (MLGO's flag); overrides generate_vocab.VocabConfig.num_buckets."
)
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings overriding the files.")


def main(argv):
    del argv
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    config = generate_vocab_lib.VocabConfig()
    if _NUM_BUCKETS.value is not None:
        config = dataclasses.replace(config, num_buckets=_NUM_BUCKETS.value)
    result = generate_vocab_lib.generate_vocab(_INPUT.value, _OUTPUT_DIR.value, config)
    print(
        f"wrote {len(result.features)} .buckets files to {result.output_dir} from {result.decisions_sampled} decisions"
    )


def run():
    flags.mark_flags_as_required(["input", "output_dir"])
    app.run(main)


if __name__ == "__main__":
    run()
