r"""Exports a trained inlining policy for deployment in a stock clang-22 (pass plugin) or an LLVM build.

Usage:
  python -m compiler_opt.tools.export_model \
    --policy=runs/bcmax/saved_policy --output_dir=runs/bcmax/export
  clang-22 -Oz -fpass-plugin=runs/bcmax/export/libbcmax_inliner.so -c foo.c

Input: `--policy`, an MLGO `saved_policy` directory (or the directory holding one), as docs/CONTRACTS.md describes,
or a bc_max --root_dir (the iteration it chose on validation).
Output: `--output_dir` with `libbcmax_inliner.so` (the plugin), `saved_model/` (for
`-DLLVM_INLINER_MODEL_PATH=` when building LLVM), `aot/InlinerSizeModel.{h,o}`, a Bazel repository (`WORKSPACE`,
`BUILD.bazel`, `xla_runtime/`) and `export.json`; see compiler_opt/tools/export_model_lib.py. Settings (compiler
names, target triple) are gin parameters of `export_model.export_policy`.
"""

import sys

from absl import app, flags

from compiler_opt import gin_setup
from compiler_opt.tools import export_model_lib

_POLICY = flags.DEFINE_string("policy", None, "saved_policy directory (or one holding it), or a bc_max root.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Directory to write the export to (replaced if an export).")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string(
    "gin_bindings", [], "Gin bindings, e.g. export_model.export_policy.clang='clang-22'."
)
flags.mark_flags_as_required(["policy", "output_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    try:
        manifest = export_model_lib.export_policy(_POLICY.value, _OUTPUT_DIR.value)
    except export_model_lib.ExportError as e:
        sys.exit(f"export failed: {e}")
    print(manifest.to_json(), end="")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
