r"""Builds a program with stock clang-22 -Oz and with a trained inliner (the exported pass plugin), links both the
same way, runs a smoke test on both and prints the linked sizes.

Your own project (a build command run in a fresh copy of the source tree, with CC/CXX set to clang-22 wrappers):

  python -m compiler_opt.tools.compare_builds --policy=demo_output --work_dir=/tmp/cmp \
    --source_dir=~/src/myprog --binary=build/myprog \
    --build_command='cmake -S . -B build -DCMAKE_C_COMPILER=$CC -DCMAKE_CXX_COMPILER=$CXX && cmake --build build' \
    --smoke_test='"$PROGRAM" --selftest' --corpus_dir=/tmp/myprog_corpus

or from a compile_commands.json (every command is re-run, and all objects are linked into one program):

  python -m compiler_opt.tools.compare_builds --plugin=export/libbcmax_inliner.so --work_dir=/tmp/cmp \
    --source_dir=~/src/myprog --compile_commands=~/src/myprog/build/compile_commands.json --link_args=-lm \
    --binary=myprog --smoke_test='"$PROGRAM" < in.txt | cmp - "$DATA/expected.txt"'

The bundled programs (brotli, Lua, fastText; sources fetched by name, pinned SHA-256):

  python -m compiler_opt.tools.compare_builds --policy=demo_output --work_dir=build/compare --programs=all

Input: `--policy`, a saved_policy directory or a bc_max root directory (the iteration it chose on validation;
before it has chosen one, its newest), exported first; or `--plugin`, an exported libbcmax_inliner.so.
Output: a table on stdout (sizes in bytes, stock -> plugin), `--json_out` (one JSON object per program, see
compare_builds_lib.Comparison.to_json), each variant's tree, program and recorded compile_commands.json under
`--work_dir/<name>/`, and with `--corpus_dir` the MLGO corpus of the stock build (extract_corpus's
--compile_commands route). Exit status 1 if any build or smoke test failed. Flags appended by the wrappers are
gin settings of `compare_builds.BuildFlags`.
"""

import json
import os
import sys

from absl import app, flags, logging

from compiler_opt import console, gin_setup
from compiler_opt.rl import atomic_file, extract_corpus_lib
from compiler_opt.tools import bundled_programs, compare_builds_lib, export_model_lib

_POLICY = flags.DEFINE_string(
    "policy", None, "saved_policy directory, or a bc_max root (its chosen iteration's policy)."
)
_PLUGIN = flags.DEFINE_string("plugin", None, "An exported libbcmax_inliner.so (instead of --policy).")
_WORK_DIR = flags.DEFINE_string("work_dir", None, "Where both builds, their programs and the export go.")
_PROGRAMS = flags.DEFINE_list("programs", [], f"Bundled programs: {', '.join(bundled_programs.NAMES)} or all.")
_NAME = flags.DEFINE_string("name", None, "Your program's label (default: the source directory's name).")
_SOURCE_DIR = flags.DEFINE_string("source_dir", None, "Your program's source tree (copied, never modified).")
_BUILD_COMMAND = flags.DEFINE_string("build_command", None, "Shell command building it in the copied tree.")
_COMPILE_COMMANDS = flags.DEFINE_string("compile_commands", None, "compile_commands.json to build from instead.")
_LINK_ARGS = flags.DEFINE_list("link_args", [], "Libraries for linking the compile_commands.json objects.")
_BINARY = flags.DEFINE_string("binary", None, "The linked program's path relative to the tree.")
_SMOKE_TEST = flags.DEFINE_string("smoke_test", None, "Shell command; $PROGRAM is the program, exit 0 passes.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Exported to the smoke test as $DATA (default: source_dir).")
_CORPUS_DIR = flags.DEFINE_string("corpus_dir", None, "Write the stock build's corpus here (per program if many).")
_JSON_OUT = flags.DEFINE_string("json_out", None, "Also write the results as JSON here.")
_GIN_FILES = flags.DEFINE_multi_string("gin_files", [], "Gin config files.")
_GIN_BINDINGS = flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings.")

flags.mark_flag_as_required("work_dir")
flags.mark_flags_as_mutual_exclusive(["policy", "plugin"], required=True)


def _projects(work_dir: str) -> list[compare_builds_lib.Project]:
    if _PROGRAMS.value:
        names = bundled_programs.NAMES if _PROGRAMS.value == ["all"] else _PROGRAMS.value
        return [bundled_programs.prepare(name, work_dir) for name in names]
    if not _SOURCE_DIR.value or not _BINARY.value or _SMOKE_TEST.value is None:
        raise app.UsageError("give --programs, or --source_dir, --binary, --smoke_test and a build")
    if bool(_BUILD_COMMAND.value) == bool(_COMPILE_COMMANDS.value):
        raise app.UsageError("give exactly one of --build_command and --compile_commands")
    source_dir = os.path.abspath(os.path.expanduser(_SOURCE_DIR.value))
    return [
        compare_builds_lib.Project(
            name=_NAME.value or os.path.basename(source_dir.rstrip("/")),
            source_dir=source_dir,
            build_command=_BUILD_COMMAND.value or "",
            binary=_BINARY.value,
            smoke_test=_SMOKE_TEST.value,
            data_dir=os.path.abspath(_DATA_DIR.value) if _DATA_DIR.value else "",
            compile_commands=os.path.abspath(_COMPILE_COMMANDS.value) if _COMPILE_COMMANDS.value else "",
            link_args=tuple(_LINK_ARGS.value),
        )
    ]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    work_dir = os.path.abspath(_WORK_DIR.value)
    os.makedirs(work_dir, exist_ok=True)
    log_file = console.log_to_file(work_dir, "compare_builds")
    gin_setup.parse(_GIN_FILES.value, _GIN_BINDINGS.value)
    logging.info("full log: %s", log_file, extra=console.STEP)
    try:
        plugin = _PLUGIN.value
        if plugin is None:
            policy = export_model_lib.resolve_policy(_POLICY.value)
            logging.info("exporting %s", policy, extra=console.STEP)
            export_dir = os.path.join(work_dir, "export")
            export_model_lib.export_policy(policy, export_dir)
            plugin = os.path.join(export_dir, export_model_lib.PLUGIN_FILENAME)
        projects = _projects(work_dir)
        comparisons = []
        for project in projects:
            comparison = compare_builds_lib.compare(project, plugin, work_dir)
            comparisons.append(comparison)
            if _CORPUS_DIR.value and comparison.stock.ok:
                corpus_dir = _CORPUS_DIR.value if len(projects) == 1 else os.path.join(_CORPUS_DIR.value, project.name)
                print(compare_builds_lib.make_corpus(comparison, corpus_dir, jobs=2).describe())
    except (compare_builds_lib.CompareError, export_model_lib.ExportError, extract_corpus_lib.ExtractionError) as e:
        sys.exit(f"compare_builds: {e}")
    print(f"plugin: {plugin}")
    print(compare_builds_lib.format_table(comparisons))
    if _JSON_OUT.value:
        atomic_file.write_text(_JSON_OUT.value, json.dumps([c.to_json() for c in comparisons], indent=1) + "\n")
    failed = [c for c in comparisons if not c.ok]
    for c in failed:
        print(f"FAILURE: {c.project}: {c.failure}", file=sys.stderr)
    if failed:
        sys.exit(1)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
