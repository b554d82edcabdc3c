r"""Packages a trained policy as the shipped model, the one `make plugin` exports by default.

Usage:
  python -m compiler_opt.tools.ship_model --policy=full_output_v2 --output_dir=models/inliner_size
  make ship-model            # the same, from the full run on default corpus v2

Input: `--policy`, a bc_max --root_dir (the iteration it chose on validation), an MLGO `saved_policy` directory or
the directory holding one; it must carry a valid numpy sidecar (`fast_policy.npz`, written by the trainer).
Output: `--output_dir` with `saved_policy/` (a byte-for-byte copy) and `model.json` (provenance: the SavedModel's
digest, the iteration and its figures per part); the directory is replaced in one step. Prints model.json.
Layout and contract: compiler_opt/tools/ship_model_lib.py.
"""

import sys

from absl import app, flags

from compiler_opt.tools import ship_model_lib

_POLICY = flags.DEFINE_string("policy", None, "bc_max root, saved_policy directory, or a directory holding one.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Directory to write the shipped model to (replaced).")
flags.mark_flags_as_required(["policy", "output_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        provenance = ship_model_lib.ship(_POLICY.value, _OUTPUT_DIR.value)
    except ship_model_lib.ShipError as e:
        sys.exit(f"ship_model failed: {e}")
    print(provenance.to_json())


if __name__ == "__main__":
    app.run(main)
