r"""Linked program sizes with the trained inliner vs stock clang-22 -Oz, on real programs built by their own builds.

Usage:
  .venv/bin/python bench/linked_size.py --policy=models/inliner_size    # the shipped model
  .venv/bin/python bench/linked_size.py --policy=demo_output            # a bc_max run's chosen iteration
  .venv/bin/python bench/linked_size.py --plugin=build/export/libbcmax_inliner.so [--programs=brotli,lua]

Builds each bundled program (compiler_opt/tools/bundled_programs.py: the brotli CLI, the Lua 5.4 interpreter,
fastText's CLI) twice with compiler_opt.tools.compare_builds_lib: compiles with `-Oz -ffunction-sections
-fdata-sections` (plus `-fpass-plugin=libbcmax_inliner.so` for the plugin build), links with `-Wl,--gc-sections`,
strips a copy with `llvm-objcopy --strip-all`, and runs the program's smoke test on both builds.

Prints JSON: the policy and plugin, the flags, and per program: stock and plugin sizes in bytes (unstripped,
stripped, loaded SHF_ALLOC sections and each section, object text), the object-level ratio next to the linked
ratios (plugin / stock), smoke-test results of both builds, and build times of both (CPU seconds of the build's
processes, and wall seconds, shared machine). A build or smoke test that fails is listed under `failures` (no
sizes for that program) and the bench exits 1. `corpus`: modules extracted from the stock build's recorded
compile_commands.json by extract_corpus's --compile_commands route, and compiles that failed.
"""

import dataclasses
import json
import os
import shutil
import sys
import tempfile

from absl import app, flags

from compiler_opt.tools import bundled_programs, compare_builds_lib, export_model_lib

_POLICY = flags.DEFINE_string(
    "policy", None, "saved_policy directory, or a bc_max root (its chosen iteration's policy)."
)
_PLUGIN = flags.DEFINE_string("plugin", None, "An exported libbcmax_inliner.so (instead of --policy).")
_PROGRAMS = flags.DEFINE_list("programs", list(bundled_programs.NAMES), "Bundled programs to build.")
_WORK_DIR = flags.DEFINE_string("work_dir", None, "Keep the builds here (default: a temporary directory).")
_CORPUS = flags.DEFINE_bool("corpus", True, "Also make each stock build's corpus (extract_corpus --compile_commands).")
flags.mark_flags_as_mutual_exclusive(["policy", "plugin"], required=True)


def main(argv):
    del argv
    with tempfile.TemporaryDirectory(prefix="bcmax-linked-size-") as tmp:
        work_dir = os.path.abspath(_WORK_DIR.value or tmp)
        os.makedirs(work_dir, exist_ok=True)
        policy, plugin = None, _PLUGIN.value
        if plugin is None:
            policy = export_model_lib.resolve_policy(_POLICY.value)
            export_model_lib.export_policy(policy, os.path.join(work_dir, "export"))
            plugin = os.path.join(work_dir, "export", export_model_lib.PLUGIN_FILENAME)
        build_flags = compare_builds_lib.BuildFlags()
        results, corpora = [], {}
        for name in _PROGRAMS.value:
            project = bundled_programs.prepare(name, work_dir)
            result = compare_builds_lib.compare(project, plugin, work_dir, flags=build_flags)
            results.append(result)
            if _CORPUS.value and result.stock.ok:
                corpus_dir = os.path.join(work_dir, "corpus", name)
                shutil.rmtree(corpus_dir, ignore_errors=True)
                summary = compare_builds_lib.make_corpus(result, corpus_dir, jobs=2)
                corpora[name] = {"modules": len(summary.modules), "failed": len(summary.failed)}
        out = {
            "policy": policy,
            "plugin": os.path.abspath(plugin),
            "flags": dataclasses.asdict(build_flags),
            "strip": "llvm-objcopy-22 --strip-all",
            "programs": [r.to_json() | {"corpus": corpora.get(r.project)} for r in results],
            "failures": {r.project: r.failure for r in results if not r.ok},
        }
        print(json.dumps(out, indent=1))
        print(compare_builds_lib.format_table(results), file=sys.stderr)
        if out["failures"]:
            sys.exit(1)


if __name__ == "__main__":
    app.run(main)
