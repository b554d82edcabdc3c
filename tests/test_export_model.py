"""Specification of the policy export (compiler_opt/tools/export_model.py) and of the pass plugin it builds.

Integration tests run the real saved_model_cli, CMake, clang-22 and llvm-dev; they share one export of a hand-set
policy (inline iff the callee has at most two basic blocks), made through the binary.
"""

import dataclasses
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from compiler_opt.rl import protocol
from compiler_opt.tools import export_model_lib
from tests import export_policy_fixtures

_TESTDATA = os.path.join(os.path.dirname(__file__), "testdata")
_SOURCES = sorted(glob.glob(os.path.join(_TESTDATA, "*.c")) + glob.glob(os.path.join(_TESTDATA, "*.cpp")))


def _int64(name):
    return protocol.TensorSpec(name=name, dtype="<i8", shape=(1,))


def _fake_policies(root, iterations):
    for n in iterations:
        policy = root / f"iteration_{n}" / "model" / "saved_policy"
        policy.mkdir(parents=True)
        (policy / "saved_model.pb").write_bytes(b"")


def test_a_bc_max_run_ships_the_iteration_it_chose_on_validation_not_its_newest(tmp_path):
    _fake_policies(tmp_path, (1, 2, 3))
    (tmp_path / "results.json").write_text(json.dumps({"best_iteration": 2, "chosen_on": "validation"}))
    assert export_model_lib.resolve_policy(str(tmp_path)) == str(tmp_path / "iteration_2" / "model" / "saved_policy")


def test_a_bc_max_run_whose_chosen_policy_is_gone_is_an_error_not_another_iteration(tmp_path):
    _fake_policies(tmp_path, (1, 3))
    (tmp_path / "results.json").write_text(json.dumps({"best_iteration": 2, "chosen_on": "validation"}))
    with pytest.raises(export_model_lib.ExportError, match=r"results.json chose .*iteration_2.*rerun bc_max"):
        export_model_lib.resolve_policy(str(tmp_path))


def test_a_damaged_results_file_is_an_error_naming_it(tmp_path):
    _fake_policies(tmp_path, (1,))
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(export_model_lib.ExportError, match=r"results.json is not a bc_max results file"):
        export_model_lib.resolve_policy(str(tmp_path))


def test_a_bc_max_run_without_results_yet_ships_its_highest_iteration_number_not_the_last_name(tmp_path, caplog):
    _fake_policies(tmp_path, (2, 10, 9))
    (tmp_path / "iteration_11").mkdir()  # an iteration still training: no policy yet
    assert export_model_lib.resolve_policy(str(tmp_path)) == str(tmp_path / "iteration_10" / "model" / "saved_policy")
    # Not chosen on validation: the user is told so.
    assert "no results.json naming the iteration chosen on validation" in caplog.text
    assert "iteration 10" in caplog.text


def test_resolving_a_directory_without_a_policy_names_it_and_the_fix(tmp_path):
    with pytest.raises(export_model_lib.ExportError, match=f"{tmp_path} holds no saved_model.pb.*make demo"):
        export_model_lib.resolve_policy(str(tmp_path))


def test_check_features_accepts_features_clang_provides():
    export_model_lib.check_features(
        ("callee_users", "threshold"), (_int64("callee_users"), _int64("threshold"), _int64("x")), "clang-22"
    )


def test_check_features_names_a_feature_clang_does_not_provide():
    with pytest.raises(export_model_lib.ExportError, match="'callee_colour', which clang-22's inliner does not"):
        export_model_lib.check_features(("callee_colour", "threshold"), (_int64("threshold"),), "clang-22")


def test_check_features_explains_that_inlining_default_is_interactive_only():
    with pytest.raises(export_model_lib.ExportError, match="only in interactive mode.*dropped_features"):
        export_model_lib.check_features(("inlining_default",), (_int64("threshold"),), "clang-22")


def test_check_features_rejects_a_feature_of_another_type():
    float_spec = protocol.TensorSpec(name="threshold", dtype="<f4", shape=(1,))
    with pytest.raises(export_model_lib.ExportError, match="'threshold' as <f4"):
        export_model_lib.check_features(("threshold",), (float_spec,), "clang-22")


def test_manifest_round_trips_through_json():
    manifest = export_model_lib.ExportManifest(
        policy="/p/saved_policy",
        features=("a", "b"),
        clang="clang-22",
        clang_version="Debian clang version 22.1.8",
        llvm_major=22,
        tensorflow_version="2.15.0",
        target_triple="x86_64-pc-linux",
        plugin="libbcmax_inliner.so",
        plugin_bytes=123,
        exported_symbols=("llvmGetPassPluginInfo",),
        quantile_boundaries=(1000, 40),
        seconds=1.5,
    )
    assert export_model_lib.ExportManifest.from_json(manifest.to_json()) == manifest


def test_write_model_rejects_a_savedmodel_without_action_signature(tmp_path):
    import tensorflow as tf

    module = tf.Module()
    module.f = tf.function(lambda x: {"y": x}, input_signature=[tf.TensorSpec([1], tf.int64, name="x")])
    tf.saved_model.save(module, str(tmp_path / "policy"), signatures={"serving_default": module.f})
    with pytest.raises(export_model_lib.ExportError, match="no `action` signature"):
        export_model_lib.write_model(str(tmp_path / "policy"), str(tmp_path / "out"))


def test_write_model_rejects_a_float_feature_input(tmp_path):
    import tensorflow as tf

    module = tf.Module()
    module.f = tf.function(
        lambda threshold: {"inlining_decision": tf.cast(threshold > 0, tf.int64)},
        input_signature=[tf.TensorSpec([1], tf.float32, name="threshold")],
    )
    tf.saved_model.save(module, str(tmp_path / "policy"), signatures={"action": module.f})
    with pytest.raises(export_model_lib.ExportError, match="'threshold' is float32.*expected int64"):
        export_model_lib.write_model(str(tmp_path / "policy"), str(tmp_path / "out"))


def test_deduplicate_bucketize_merges_repeated_quantiles_and_keeps_every_count():
    import numpy as np
    import tensorflow as tf

    quantiles = [0.0, 0.0, 0.0, 1.0, 1.0, 5.0, 5.0, 5.0, 9.0]
    bucketize = tf.function(
        lambda x: tf.raw_ops.Bucketize(input=x, boundaries=quantiles, name="rank"),
        input_signature=[tf.TensorSpec([None], tf.float32, name="x")],
    )
    graph_def = bucketize.get_concrete_function().graph.as_graph_def()
    assert export_model_lib.deduplicate_bucketize(graph_def) == (9, 4)
    x = np.array([-1, 0, 0.5, 1, 3, 5, 8.9, 9, 10], np.float32)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        (rank,) = tf.graph_util.import_graph_def(
            graph_def, input_map={"x:0": tf.constant(x)}, return_elements=["rank:0"]
        )
        assert session.run(rank).tolist() == [0, 3, 3, 5, 5, 8, 8, 9, 9]


@pytest.fixture(scope="module")
def rule_policy(tmp_path_factory):
    return export_policy_fixtures.write_rule_policy(str(tmp_path_factory.mktemp("rule_policy")))


@pytest.fixture(scope="module")
def rule_export(rule_policy, tmp_path_factory):
    """The export of the rule policy, made by the binary (its smoke test): (output_dir, manifest dict)."""
    output_dir = str(tmp_path_factory.mktemp("export") / "rule")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler_opt.tools.export_model",
            f"--policy={rule_policy}",
            f"--output_dir={output_dir}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(output_dir, export_model_lib.MANIFEST_FILENAME)) as f:
        assert json.loads(proc.stdout) == json.load(f)
    return output_dir, json.loads(proc.stdout)


@pytest.mark.integration
def test_export_writes_plugin_savedmodel_aot_model_and_bazel_package(rule_export):
    output_dir, manifest = rule_export
    for name in (
        "libbcmax_inliner.so",
        "saved_model/saved_model.pb",
        "aot/InlinerSizeModel.h",
        "aot/InlinerSizeModel.o",
        "WORKSPACE",
        "BUILD.bazel",
        "xla_runtime/src/xla/cpu_function_runtime.cc",
        "xla_runtime/include/tensorflow/compiler/tf2xla/xla_compiled_cpu_function.h",
    ):
        assert os.path.isfile(os.path.join(output_dir, name)), name
    assert tuple(manifest["features"]) == export_policy_fixtures.clang22_release_features()
    per_feature = export_policy_fixtures.QUANTILE_BOUNDARIES
    assert manifest["quantile_boundaries"] == [n * len(manifest["features"]) for n in per_feature]
    assert manifest["plugin_bytes"] == os.path.getsize(os.path.join(output_dir, "libbcmax_inliner.so"))


@pytest.mark.integration
def test_savedmodel_takes_each_feature_by_name_and_returns_inlining_decision(rule_export):
    import tensorflow as tf

    output_dir, manifest = rule_export
    action = tf.saved_model.load(os.path.join(output_dir, "saved_model")).signatures["action"]
    inputs = action.structured_input_signature[1]
    assert sorted(inputs) == list(manifest["features"])
    assert all(spec.dtype == tf.int64 and spec.shape == [1] for spec in inputs.values())
    feeds = {name: tf.constant([0], tf.int64) for name in inputs}
    assert action(**feeds)["inlining_decision"].numpy().tolist() == [1]
    feeds[export_policy_fixtures.RULE_FEATURE] = tf.constant([5], tf.int64)
    assert action(**feeds)["inlining_decision"].numpy().tolist() == [0]


@pytest.mark.integration
def test_plugin_exports_only_its_entry_point_and_resolves_every_symbol(rule_export):
    plugin = os.path.join(rule_export[0], "libbcmax_inliner.so")
    assert export_model_lib.exported_symbols(plugin, "llvm-readelf-22") == ("llvmGetPassPluginInfo",)
    ldd = subprocess.run(["ldd", "-r", plugin], capture_output=True, text=True, check=True)
    assert "undefined symbol" not in ldd.stdout + ldd.stderr
    assert "libLLVM" in ldd.stdout


@dataclasses.dataclass(frozen=True)
class SourceModule:
    """A test source compiled with the clang driver at -Oz (what compiler_opt.rl.env needs of a module)."""

    name: str
    path: str

    def command(self, clang, obj_path, extra_args=()):
        driver = clang.replace("clang", "clang++") if self.path.endswith(".cpp") else clang
        return [driver, "-Oz", "-c", self.path, "-o", obj_path, *extra_args]


@pytest.mark.integration
@pytest.mark.parametrize("source", _SOURCES, ids=os.path.basename)
def test_plugin_gives_the_interactive_mode_size_with_the_same_savedmodel(source, rule_policy, rule_export, tmp_path):
    from compiler_opt.rl import env, policies
    from compiler_opt.rl.inlining import task as task_lib

    module = SourceModule(os.path.basename(source), source)
    interactive = env.compile_module(module, policies.SavedModelPolicy(rule_policy))
    assert interactive.ok, interactive.error
    obj = str(tmp_path / "plugin.o")
    plugin = os.path.join(rule_export[0], "libbcmax_inliner.so")
    subprocess.run(module.command("clang-22", obj, (f"-fpass-plugin={plugin}",)), check=True)
    assert task_lib.InliningForSizeTask().score(obj).text_size == interactive.text_size


@pytest.mark.integration
@pytest.mark.parametrize("source", _SOURCES, ids=os.path.basename)
def test_plugin_default_advice_is_llvm_heuristic(source, rule_export, tmp_path):
    """With -ml-inliner-skip-policy=if-caller-not-cold (and no profile) the ML advisor takes every decision from the
    default-advice callback: the plugin must then give stock -Oz's size."""
    from compiler_opt.rl.inlining import task as task_lib

    module = SourceModule(os.path.basename(source), source)
    plugin = os.path.join(rule_export[0], "libbcmax_inliner.so")
    skip = ("-mllvm", "-ml-inliner-skip-policy=if-caller-not-cold")
    sizes = []
    for extra in ((), (f"-fpass-plugin={plugin}", *skip)):
        obj = str(tmp_path / "module.o")
        subprocess.run(module.command("clang-22", obj, extra), check=True)
        sizes.append(task_lib.InliningForSizeTask().score(obj).text_size)
    assert sizes[0] == sizes[1]


@pytest.mark.integration
def test_rule_policy_takes_both_decisions_on_the_test_sources(rule_policy):
    from compiler_opt.rl import env, policies

    actions = []
    for source in _SOURCES:
        result = env.compile_module(
            SourceModule(os.path.basename(source), source), policies.SavedModelPolicy(rule_policy)
        )
        actions.extend(result.actions.tolist())
    assert 0 < sum(actions) < len(actions)


@pytest.mark.integration
def test_reexport_replaces_the_earlier_export_and_reuses_the_cached_build(rule_policy, rule_export, tmp_path):
    out = str(tmp_path / "export")
    export_model_lib.export_policy(rule_policy, out, bazel_package=False)
    runtimes = glob.glob(os.path.join(export_model_lib.cache_dir(), "llvm_plugin", "*", "build", "*xla_runtime.a"))
    built = {path: os.stat(path).st_mtime_ns for path in runtimes}
    os.remove(os.path.join(out, "libbcmax_inliner.so"))
    again = export_model_lib.export_policy(rule_policy, out, bazel_package=False)
    assert again.features == tuple(rule_export[1]["features"])
    assert os.path.isfile(os.path.join(out, "libbcmax_inliner.so"))
    assert sorted(os.listdir(tmp_path)) == ["export"]
    assert built and {path: os.stat(path).st_mtime_ns for path in built} == built


@pytest.mark.integration
def test_export_refuses_to_overwrite_a_directory_that_is_not_an_export(rule_policy, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(export_model_lib.ExportError, match="not an earlier export"):
        export_model_lib.export_policy(rule_policy, str(out), bazel_package=False)
    assert sorted(os.listdir(out)) == ["notes.txt"]
    assert sorted(os.listdir(tmp_path)) == ["precious"]


@pytest.mark.integration
def test_export_rejects_a_policy_reading_features_release_mode_lacks(tmp_path):
    names = export_policy_fixtures.clang22_release_features() + ("inlining_default", "not_a_clang_feature")
    policy = export_policy_fixtures.write_rule_policy(str(tmp_path / "policy"), names)
    with pytest.raises(export_model_lib.ExportError) as error:
        export_model_lib.export_policy(policy, str(tmp_path / "export"))
    assert "'inlining_default', which clang computes only in interactive mode" in str(error.value)
    assert "'not_a_clang_feature', which clang-22's inliner does not provide" in str(error.value)
    assert sorted(os.listdir(tmp_path)) == ["policy"]


@pytest.mark.integration
def test_plugin_with_a_mismatched_model_fails_the_compile_with_a_clear_error(tmp_path):
    names = export_policy_fixtures.clang22_release_features() + ("not_a_clang_feature",)
    policy = export_policy_fixtures.write_rule_policy(str(tmp_path / "policy"), names)
    # The export checks refuse this model, so build its plugin from the parts.
    export_model_lib.write_model(policy, str(tmp_path / "saved_model"))
    export_model_lib.aot_compile(str(tmp_path / "saved_model"), str(tmp_path / "aot"), "x86_64-pc-linux")
    plugin = str(tmp_path / "libbcmax_inliner.so")
    export_model_lib.build_plugin(str(tmp_path / "aot"), plugin, cxx_compiler="clang++-22", llvm_major=22)
    source = os.path.join(_TESTDATA, "callsites.c")
    proc = subprocess.run(
        ["clang-22", "-Oz", "-c", source, "-o", str(tmp_path / "x.o"), f"-fpass-plugin={plugin}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "bcmax_inliner: the model compiled into this plugin (built for LLVM 22." in proc.stderr
    assert "does not match the features of this compiler's inliner" in proc.stderr
    assert "inputs that are not features of this compiler's inliner: 1 of 39" in proc.stderr


@pytest.mark.integration
def test_clang_reports_the_reference_release_features():
    names = tuple(sorted(spec.name for spec in export_model_lib.clang_release_features("clang-22")))
    assert names == export_policy_fixtures.clang22_release_features()


@pytest.mark.integration
@pytest.mark.skipif(
    shutil.which("bazel") is None or not os.environ.get("BCMAX_TEST_BAZEL"),
    reason="needs bazel (Debian: bazel-bootstrap) and BCMAX_TEST_BAZEL=1 (it takes ~20 s)",
)
def test_bazel_package_builds_the_model_library_offline(rule_export, tmp_path):
    workspace = str(tmp_path / "workspace")
    shutil.copytree(rule_export[0], workspace)
    stubs = os.path.join(_TESTDATA, "bazel_offline")
    proc = subprocess.run(
        [
            "bazel", "--batch", f"--output_user_root={tmp_path / 'bazel_root'}", "build", "//:model_smoke",
            f"--override_repository=rules_cc={stubs}/rules_cc",
            f"--override_repository=rules_java={stubs}/rules_java",
            "--jobs=2",
        ],
        cwd=workspace, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = subprocess.run([os.path.join(workspace, "bazel-bin", "model_smoke")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "inputs: 38, decision at all-zero features: 1" in run.stdout
