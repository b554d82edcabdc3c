"""Exports a trained inlining policy into a stock clang-22: XLA AOT model, pass plugin, Bazel package.

Input: an MLGO `saved_policy` (docs/CONTRACTS.md): a TF-Agents PolicySaver SavedModel whose `action` signature takes
int64 [1] inputs named by clang's features (plus `step_type`, `reward`, `discount`) and returns `inlining_decision`
(int64 [1]); this project's trainers and MLGO's `weighted_bc_trainer` both write one.

Output directory (assembled under a temporary name next to it, then renamed into place):
  saved_model/            SavedModel (tag `serve`) for both deployment routes, and output_spec.json. Signature `action`:
                          one int64 [1] input per feature the policy's graph reads (inputs it accepts but ignores,
                          such as MLGO's `inlining_default`, are left out), output `inlining_decision` int64 [1];
                          output_spec.json names the graph tensor of that output (compiler_opt/rl/policy_saver.py).
                          The policy's graph, frozen (weights as constants), with the time-step inputs fixed
                          (step_type=1, reward=0, discount=1, as compiler_opt.rl.saved_policy feeds them) and repeated
                          quantiles merged (`deduplicate_bucketize`): same decisions, ~10x cheaper. LLVM's own route:
                          build LLVM with `-DLLVM_INLINER_MODEL_PATH=<output_dir>/saved_model`.
  aot/InlinerSizeModel.h, aot/InlinerSizeModel.o
                          `saved_model_cli aot_compile_cpu` of saved_model/: class `llvm::InlinerSizeModel`, inputs
                          `feed_<feature>` for the features the graph reads, output `fetch_inlining_decision`: the
                          names LLVM's ReleaseModeModelRunner looks up.
  libbcmax_inliner.so     pass plugin for the stock compiler: `clang-22 -Oz -fpass-plugin=.../libbcmax_inliner.so`.
                          Built by CMake from `llvm_plugin/` against llvm-22-dev; exports only llvmGetPassPluginInfo.
  xla_runtime/            the four XLA AOT runtime sources the model needs and every header they or the model include.
  WORKSPACE, BUILD.bazel, model_smoke.cc
                          a Bazel repository; `//:inliner_size_model` is the model plus runtime as a cc_library.
  export.json             ExportManifest (features read, versions, plugin size and exported symbols).

The CMake build tree (the XLA runtime and the plugin's model-independent code) is cached per TensorFlow version,
compiler and LLVM version under `$BCMAX_CACHE_DIR` (default `~/.cache/compiler_opt_bcmax`), so a later export only
recompiles the model-specific file and relinks.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import gin
import numpy as np
from absl import logging

from compiler_opt.rl import atomic_file, policy_saver, protocol, saved_policy
from compiler_opt.rl.imitation_learning import report

PLUGIN_FILENAME = "libbcmax_inliner.so"
MANIFEST_FILENAME = "export.json"
PLUGIN_ENTRY_POINT = "llvmGetPassPluginInfo"
CPP_CLASS = "llvm::InlinerSizeModel"
ADVICE_NAME = "inlining_decision"
# Computed by clang only in interactive mode with -inliner-interactive-include-default; a release-mode advisor
# (LLVM's or our plugin) never fills it in.
DEFAULT_DECISION_FEATURE = "inlining_default"
# How compiler_opt.rl.saved_policy feeds PolicySaver's time-step inputs; a greedy policy ignores them.
_TIME_STEP_FEEDS = {"step_type": ("int32", 1), "reward": ("float32", 0.0), "discount": ("float32", 1.0)}
# The XLA AOT runtime sources a compiled model links against (the rest of TF's runtime is not needed).
XLA_RUNTIME_SOURCES = (
    "tensorflow/compiler/tf2xla/xla_compiled_cpu_function.cc",
    "xla/cpu_function_runtime.cc",
    "xla/executable_run_options.cc",
    "xla/service/custom_call_status.cc",
)
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BAZEL_FILES = ("WORKSPACE", "BUILD.bazel", "model_smoke.cc")
# A module with no call site: clang still builds the inline advisor and sends the interactive-mode header.
_NO_CALL_IR = 'target triple = "{triple}"\ndefine i32 @f(i32 %x) {{\n  ret i32 %x\n}}\n'
# A module with one inlinable call site: loading the plugin on it runs the model once.
_ONE_CALL_IR = (
    'target triple = "{triple}"\n'
    "define internal i32 @square(i32 %x) {{\n  %y = mul i32 %x, %x\n  ret i32 %y\n}}\n"
    "define i32 @f(i32 %x) {{\n  %r = call i32 @square(i32 %x)\n  ret i32 %r\n}}\n"
)
_OUTPUT_TAIL = 3000


class ExportError(Exception):
    """The policy cannot be exported (unusable input, a feature clang does not provide, a failed build)."""


@dataclasses.dataclass(frozen=True)
class ExportManifest:
    """What an export produced; written as `export.json`.

    features: the features the compiled model reads (sorted clang names), each an int64 [1] input.
    plugin_bytes: size of libbcmax_inliner.so. exported_symbols: its defined global/weak dynamic symbols.
    quantile_boundaries: Bucketize boundaries in the policy's graph and in the exported one (repeats merged).
    seconds: wall time of the export.
    """

    policy: str
    features: tuple[str, ...]
    clang: str
    clang_version: str
    llvm_major: int
    tensorflow_version: str
    target_triple: str
    plugin: str
    plugin_bytes: int
    exported_symbols: tuple[str, ...]
    quantile_boundaries: tuple[int, int]
    seconds: float

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ExportManifest:
        fields = json.loads(text)
        for name in ("features", "exported_symbols", "quantile_boundaries"):
            fields[name] = tuple(fields[name])
        return cls(**fields)


def cache_dir() -> str:
    """Root of the build cache: `$BCMAX_CACHE_DIR`, else `~/.cache/compiler_opt_bcmax`."""
    return os.environ.get("BCMAX_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "compiler_opt_bcmax")


def tensorflow_dir() -> str:
    """Directory of the installed tensorflow package (holds `include/` and `xla_aot_runtime_src/`)."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or spec.origin is None:
        raise ExportError("tensorflow is not installed in this Python environment (run `make setup`)")
    return os.path.dirname(spec.origin)


def _run(cmd: list[str], what: str, *, timeout_s: float, cwd: str | None = None, env=None, stdin: bytes = b""):
    """Runs `cmd`; raises ExportError naming `what` with the command's output tail when it fails."""
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout_s, cwd=cwd, env=env, check=False)
    except FileNotFoundError:
        raise ExportError(f"{what}: {cmd[0]!r} was not found; install it (`make setup`)") from None
    except subprocess.TimeoutExpired:
        raise ExportError(f"{what}: `{' '.join(cmd)}` did not finish in {timeout_s:g} s") from None
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).decode(errors="replace")[-_OUTPUT_TAIL:]
        raise ExportError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{output}")
    return proc


def clang_release_features(clang: str, target_triple: str = "x86_64-pc-linux-gnu") -> tuple[protocol.TensorSpec, ...]:
    """The features `clang`'s ML inline advisor computes in release mode, read from its interactive-mode header.

    Asks the compiler itself (rather than a fixed list) so a policy is checked against the clang it is deployed in.
    The module compiled has no call site, so the channel files can be regular files: clang writes the header to
    BASE.out and never reads BASE.in.
    """
    with tempfile.TemporaryDirectory(prefix="bcmax-features-") as tmp:
        base = os.path.join(tmp, "channel")
        open(base + ".in", "wb").close()
        _run(
            [
                clang, "-Oz", "-c", "-x", "ir", "-", "-o", os.path.join(tmp, "f.o"),
                "-mllvm", "-enable-ml-inliner=release",
                "-mllvm", f"-inliner-interactive-channel-base={base}",
            ],
            f"asking {clang} for its inliner features",
            timeout_s=120,
            stdin=_NO_CALL_IR.format(triple=target_triple).encode(),
        )  # fmt: skip
        try:
            with open(base + ".out", "rb") as f:
                header = protocol.parse_header(f.readline())
        except (OSError, protocol.ProtocolError) as e:
            raise ExportError(f"{clang} did not report its inliner features ({e}); is it clang >= 22?") from None
    return header.features


def resolve_policy(path: str) -> str:
    """The saved_policy that `path` names, as an absolute path: `path` itself if it holds saved_model.pb, or its
    `saved_policy/`; for a bc_max root directory, the iteration its results.json records as chosen on validation
    (an error if that policy is gone: never silently another one), or, before the run has a results.json, the
    highest-numbered `iteration_N/model/saved_policy`."""
    path = os.path.abspath(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if os.path.isfile(os.path.join(path, "saved_policy", "saved_model.pb")):
        return os.path.join(path, "saved_policy")
    try:
        chosen = report.chosen_policy(path) if os.path.isdir(path) else None
    except ValueError as e:
        raise ExportError(str(e)) from e
    if chosen is not None:
        if not os.path.isfile(os.path.join(chosen, "saved_model.pb")):
            raise ExportError(
                f"{path}/results.json chose {chosen}, which holds no saved_model.pb: rerun bc_max on {path} to "
                "retrain it, or pass another saved_policy directory"
            )
        return chosen
    found = []
    for entry in os.listdir(path) if os.path.isdir(path) else ():
        policy = os.path.join(path, entry, "model", "saved_policy")
        number = entry.removeprefix("iteration_")
        if (
            entry.startswith("iteration_")
            and number.isdigit()
            and os.path.isfile(os.path.join(policy, "saved_model.pb"))
        ):
            found.append((int(number), policy))
    if not found:
        raise ExportError(
            f"{path} holds no saved_model.pb, no saved_policy and no iteration_N/model/saved_policy: pass the "
            "`saved_policy` directory written by the trainer or a bc_max run's --root_dir (train one first: "
            "`make demo`)"
        )
    newest, policy = max(found)
    logging.warning(
        "%s has no results.json naming the iteration chosen on validation (an unfinished run?): taking its newest, "
        "iteration %d",
        path,
        newest,
    )
    return policy


@dataclasses.dataclass(frozen=True)
class DeployableModel:
    """What write_model wrote. features: the model's inputs (sorted clang names). quantile_boundaries: the
    Bucketize boundaries of the graph before and after merging repeated values."""

    features: tuple[str, ...]
    quantile_boundaries: tuple[int, int]


def write_model(policy_dir: str, output_dir: str, *, probes: int = 64) -> DeployableModel:
    """Writes the deployable SavedModel of `policy_dir` to `output_dir` (layout: module docstring).

    Checks the policy's `action` signature against docs/CONTRACTS.md: every non-time-step input int64 [1], output
    `inlining_decision` int64 [1]. The new signature takes only the features, under their own names, and feeds the
    time-step inputs as constants. The graph is frozen (weights become constants) and its quantile lookups are made
    cheaper without changing any value (`deduplicate_bucketize`); `probes` random feature vectors must get the
    original policy's decisions. Raises ExportError naming the file and the problem.
    """
    import tensorflow as tf
    from tensorflow.python.framework import convert_to_constants
    from tensorflow.python.util import deprecation

    saved_policy.register_distribution_types()
    try:
        policy = tf.saved_model.load(policy_dir)
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise ExportError(f"{policy_dir}: cannot load the SavedModel ({e})") from None
    if "action" not in policy.signatures:
        raise ExportError(
            f"{policy_dir}: no `action` signature (has {sorted(policy.signatures)}); save policies with PolicySaver"
        )
    action = policy.signatures["action"]
    inputs = action.structured_input_signature[1]
    problems = []
    for name, (dtype, _) in _TIME_STEP_FEEDS.items():
        if name in inputs and inputs[name].dtype.name != dtype:
            problems.append(f"input {name!r} is {inputs[name].dtype.name}, expected {dtype}")
    features = tuple(sorted(set(inputs) - set(_TIME_STEP_FEEDS)))
    for name in features:
        spec = inputs[name]
        if spec.dtype != tf.int64 or spec.shape.num_elements() != 1:
            problems.append(f"input {name!r} is {spec.dtype.name}{spec.shape}, expected int64 [1]")
    outputs = action.structured_outputs
    if ADVICE_NAME not in outputs:
        problems.append(f"outputs {sorted(outputs)} lack {ADVICE_NAME!r}")
    elif outputs[ADVICE_NAME].dtype != tf.int64 or outputs[ADVICE_NAME].shape.num_elements() != 1:
        problems.append(f"output {ADVICE_NAME!r} is {outputs[ADVICE_NAME].dtype.name}, expected int64 [1]")
    if not features:
        problems.append("it takes no feature input")
    if problems:
        raise ExportError(f"{policy_dir}: `action` signature does not follow docs/CONTRACTS.md: {'; '.join(problems)}")

    time_step_feeds = {
        name: tf.constant([value], dtype) for name, (dtype, value) in _TIME_STEP_FEEDS.items() if name in inputs
    }

    @tf.function(input_signature=[tf.TensorSpec([1], tf.int64, name=name) for name in features])
    def decide(*values):
        decision = action(**dict(zip(features, values, strict=True)), **time_step_feeds)[ADVICE_NAME]
        return tf.reshape(decision, [1])

    frozen = convert_to_constants.convert_variables_to_constants_v2(decide.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    boundaries = deduplicate_bucketize(graph_def)
    fetch = frozen.outputs[0].name
    with deprecation.silence():  # TF's only pruning of a GraphDef; its "designed for TF1" notice is not for users.
        used = {n.name for n in tf.compat.v1.graph_util.extract_sub_graph(graph_def, [fetch.split(":")[0]]).node}
    feeds = {name: tensor.name for name, tensor in zip(features, frozen.inputs, strict=True) if tensor.op.name in used}
    unread = sorted(set(features) - set(feeds))
    if unread:
        # E.g. `inlining_default`, which MLGO's policies (and this project's) accept and ignore.
        logging.info("The policy accepts but does not read %s; the deployable model does not take them", unread)
    _save_graph(graph_def, feeds, fetch, output_dir)
    policy_saver.write_output_spec(output_dir)

    exported = tf.saved_model.load(output_dir).signatures["action"]
    rng = np.random.default_rng(0)
    for i in range(probes):
        scale = (2, 20, 1_000, 100_000)[i % 4]
        values = {
            name: tf.constant([v], tf.int64)
            for name, v in zip(features, rng.integers(-scale, scale, len(features)), strict=True)
        }
        want = int(action(**values, **time_step_feeds)[ADVICE_NAME].numpy().reshape(-1)[0])
        got = int(exported(**{k: v for k, v in values.items() if k in feeds})[ADVICE_NAME].numpy()[0])
        if want != got:
            raise ExportError(
                f"{output_dir}: the deployable model decides {got} where {policy_dir} decides {want} for "
                f"{ {k: int(v.numpy()[0]) for k, v in values.items()} }"
            )
    return DeployableModel(features=tuple(sorted(feeds)), quantile_boundaries=boundaries)


def deduplicate_bucketize(graph_def) -> tuple[int, int]:
    """Rewrites every Bucketize node of `graph_def` (a frozen GraphDef, modified in place) to an equal, cheaper one.

    MLGO-style quantile normalization counts #{i : q[i] <= v} over ~1000 quantiles per feature, most of them repeated
    (integer features): XLA compiles that to one comparison per quantile, ~27 us per decision for 38 features. The
    same count is C[Bucketize(v, u)] with u the distinct quantiles and C[k] the number of quantiles below u[k] (C[m]
    = all of them), so the node becomes Bucketize over u followed by a gather from C, under the old node's name.
    Each rewritten node is checked on every quantile and its float neighbours. Returns the boundaries before and after.
    """
    import tensorflow as tf
    from tensorflow.core.framework import node_def_pb2

    int32 = tf.int32.as_datatype_enum
    nodes, before, after = [], 0, 0
    for node in graph_def.node:
        if node.op != "Bucketize":
            nodes.append(node)
            continue
        quantiles = np.asarray(node.attr["boundaries"].list.f, np.float32)
        unique, counts = np.unique(quantiles, return_counts=True)
        before, after = before + quantiles.size, after + unique.size
        if unique.size == quantiles.size:
            nodes.append(node)
            continue
        below = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        probe = np.concatenate([quantiles, np.nextafter(quantiles, -np.inf), np.nextafter(quantiles, np.inf)])
        probe = tf.constant(probe.astype(np.float32))
        index = tf.raw_ops.Bucketize(input=probe, boundaries=unique.tolist())
        if not np.array_equal(below[index.numpy()], tf.raw_ops.Bucketize(input=probe, boundaries=quantiles.tolist())):
            raise ExportError(f"merging the repeated quantiles of {node.name} would change its values")
        lookup = node_def_pb2.NodeDef()
        lookup.CopyFrom(node)
        lookup.name = f"{node.name}/distinct"
        del lookup.attr["boundaries"].list.f[:]
        lookup.attr["boundaries"].list.f.extend(unique.tolist())
        table = node_def_pb2.NodeDef(name=f"{node.name}/below", op="Const", device=node.device)
        table.attr["dtype"].type = int32
        table.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(below))
        axis = node_def_pb2.NodeDef(name=f"{node.name}/axis", op="Const", device=node.device)
        axis.attr["dtype"].type = int32
        axis.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.int32(0)))
        gather = node_def_pb2.NodeDef(
            name=node.name, op="GatherV2", input=[table.name, lookup.name, axis.name], device=node.device
        )
        for attr in ("Tparams", "Tindices", "Taxis"):
            gather.attr[attr].type = int32
        gather.attr["batch_dims"].i = 0
        nodes += [lookup, table, axis, gather]
    del graph_def.node[:]
    graph_def.node.extend(nodes)
    return before, after


def _save_graph(graph_def, feeds: dict[str, str], fetch: str, output_dir: str) -> None:
    """Saves a frozen GraphDef as a SavedModel (tag `serve`) with signature `action`: feeds -> inlining_decision."""
    import tensorflow as tf
    from tensorflow.python.util import deprecation

    # The TF1 SavedModel builder is what saved_model_cli's AOT path reads; its deprecation notice is not for users.
    with deprecation.silence(), tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        signature = tf.compat.v1.saved_model.signature_def_utils.predict_signature_def(
            inputs={name: graph.get_tensor_by_name(tensor) for name, tensor in feeds.items()},
            outputs={ADVICE_NAME: graph.get_tensor_by_name(fetch)},
        )
        with tf.compat.v1.Session(graph=graph) as session:
            builder = tf.compat.v1.saved_model.Builder(output_dir)
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"action": signature})
            builder.save()


def aot_compile(saved_model_dir: str, aot_dir: str, target_triple: str) -> tuple[str, ...]:
    """XLA AOT-compiles `saved_model_dir` into `aot_dir`/InlinerSizeModel.{h,o}; returns the features it reads.

    saved_model_cli freezes the graph and drops the inputs the decision does not depend on, so the generated class's
    argument names (`feed_<feature>`) are exactly the features the model reads.
    """
    try:
        found = importlib.util.find_spec("tensorflow.python.tools.saved_model_cli") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise ExportError(
            f"saved_model_cli (tensorflow.python.tools.saved_model_cli) is missing from {sys.executable}: install the "
            "pinned tensorflow (`make setup`, or `pip install -r requirements.txt`)"
        )
    os.makedirs(aot_dir, exist_ok=True)
    prefix = os.path.join(aot_dir, "InlinerSizeModel")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    # A relative --output_prefix (run in aot_dir): the entry point's symbol name is derived from it.
    _run(
        [
            sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "aot_compile_cpu",
            "--dir", os.path.abspath(saved_model_dir), "--tag_set", "serve", "--signature_def_key", "action",
            "--output_prefix", "InlinerSizeModel", "--cpp_class", CPP_CLASS, "--target_triple", target_triple,
            "--multithreading", "False",
        ],
        "saved_model_cli aot_compile_cpu",
        timeout_s=900,
        env=env,
        cwd=aot_dir,
    )  # fmt: skip
    with open(prefix + ".h") as f:
        header = f.read()
    args = _generated_names(header, "StaticArgNames", prefix + ".h")
    results = _generated_names(header, "StaticResultNames", prefix + ".h")
    if f"fetch_{ADVICE_NAME}" not in results:
        raise ExportError(f"{prefix}.h: the compiled model returns {results}, not fetch_{ADVICE_NAME}")
    bad = [a for a in args if not a.startswith("feed_")]
    if bad:
        raise ExportError(f"{prefix}.h: inputs {bad} are not named feed_<feature>")
    return tuple(sorted(a[len("feed_") :] for a in args))


def _generated_names(header: str, function: str, path: str) -> list[str]:
    match = re.search(function + r"\(\)\s*\{\s*static const char\*\s*kNames\[\]\s*=\s*\{(.*?)\};", header, re.S)
    if match is None:
        raise ExportError(f"{path}: no {function}() table; was it written by saved_model_cli aot_compile_cpu?")
    return re.findall(r'"([^"]*)"', match.group(1))


def check_features(read: tuple[str, ...], provided: tuple[protocol.TensorSpec, ...], clang: str) -> None:
    """Raises ExportError unless every feature the model reads is one `clang` provides as one int64."""
    by_name = {spec.name: spec for spec in provided}
    problems = []
    for name in read:
        spec = by_name.get(name)
        if spec is None and name == DEFAULT_DECISION_FEATURE:
            problems.append(
                f"it reads {name!r}, which clang computes only in interactive mode; retrain without it "
                "(gin: features.FeatureConfig.dropped_features)"
            )
        elif spec is None:
            problems.append(f"it reads {name!r}, which {clang}'s inliner does not provide")
        elif spec.dtype != "<i8" or spec.num_elements != 1:
            problems.append(f"{clang} provides {name!r} as {spec.dtype}{list(spec.shape)}, the model reads int64 [1]")
    if problems:
        raise ExportError(
            f"the policy does not match {clang}'s inliner features: {'; '.join(problems)}. "
            f"{clang} provides: {sorted(by_name)}"
        )


def _plugin_source_dir() -> str:
    path = os.path.join(_REPO_ROOT, "llvm_plugin")
    if not os.path.isfile(os.path.join(path, "CMakeLists.txt")):
        raise ExportError(f"{path} holds no CMakeLists.txt: export from a checkout of compiler_opt-bcmax")
    return path


def _build_key(source_dir: str, cxx_compiler: str, llvm_major: int) -> str:
    """Names the cached build tree; CMake itself rebuilds what changed in the plugin sources."""
    h = hashlib.sha256(f"{source_dir}\0{cxx_compiler}\0{llvm_major}\0{tensorflow_dir()}".encode())
    return f"tf-{importlib.metadata.version('tensorflow')}-llvm-{llvm_major}-{h.hexdigest()[:16]}"


def _copy_if_changed(src: str, dst: str) -> None:
    if os.path.isfile(dst):
        with open(src, "rb") as a, open(dst, "rb") as b:
            if a.read() == b.read():
                return
    shutil.copyfile(src, dst)


def build_plugin(aot_dir: str, output_path: str, *, cxx_compiler: str, llvm_major: int) -> None:
    """Builds the pass plugin for the model in `aot_dir` and copies it to `output_path`.

    Uses a CMake build tree cached per source directory, compiler, LLVM major and TensorFlow version (locked while in
    use), so the XLA runtime and the model-independent plugin code are compiled once.
    """
    source_dir = _plugin_source_dir()
    tree = os.path.join(cache_dir(), "llvm_plugin", _build_key(source_dir, cxx_compiler, llvm_major))
    os.makedirs(tree, exist_ok=True)
    with open(tree + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        model_dir = os.path.join(tree, "model")
        os.makedirs(model_dir, exist_ok=True)
        for name in ("InlinerSizeModel.h", "InlinerSizeModel.o"):
            _copy_if_changed(os.path.join(aot_dir, name), os.path.join(model_dir, name))
        build_dir = os.path.join(tree, "build")
        if not any(os.path.isfile(os.path.join(build_dir, f)) for f in ("build.ninja", "Makefile")):
            generator = ["-G", "Ninja"] if shutil.which("ninja") else []
            shutil.rmtree(build_dir, ignore_errors=True)
            try:
                _run(
                    [
                        "cmake", "-S", source_dir, "-B", build_dir, *generator, "-DCMAKE_BUILD_TYPE=Release",
                        f"-DCMAKE_CXX_COMPILER={cxx_compiler}", f"-DBCMAX_LLVM_MAJOR={llvm_major}",
                        f"-DBCMAX_MODEL_DIR={model_dir}", f"-DTENSORFLOW_DIR={tensorflow_dir()}",
                    ],
                    "configuring the plugin build (cmake; needs llvm-dev and cmake: `make setup`)",
                    timeout_s=300,
                )  # fmt: skip
            except ExportError:
                shutil.rmtree(build_dir, ignore_errors=True)
                raise
        jobs = str(max(1, min(2, os.cpu_count() or 1)))
        _run(["cmake", "--build", build_dir, "--target", "bcmax_inliner", "-j", jobs], "building the plugin",
             timeout_s=1800)  # fmt: skip
        shutil.copyfile(os.path.join(build_dir, PLUGIN_FILENAME), output_path)
    os.chmod(output_path, 0o755)


def exported_symbols(shared_object: str, readelf: str) -> tuple[str, ...]:
    """Names of the global or weak symbols `shared_object` defines in its dynamic symbol table (sorted)."""
    out = _run([readelf, "--dyn-syms", "-W", shared_object], f"listing the symbols of {shared_object}", timeout_s=60)
    names = set()
    for line in out.stdout.decode().splitlines():
        cols = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(cols) >= 8 and cols[0].endswith(":") and cols[4] in ("GLOBAL", "WEAK") and cols[6] != "UND":
            names.add(cols[7].split("@")[0])
    return tuple(sorted(names))


def smoke_test_plugin(clang: str, plugin: str, target_triple: str = "x86_64-pc-linux-gnu") -> None:
    """Compiles a module with one call site at -Oz with the plugin loaded; raises ExportError if clang fails."""
    with tempfile.TemporaryDirectory(prefix="bcmax-plugin-") as tmp:
        _run(
            [clang, "-Oz", "-c", "-x", "ir", "-", "-o", os.path.join(tmp, "f.o"), f"-fpass-plugin={plugin}"],
            f"compiling a test module with {clang} -fpass-plugin={plugin}",
            timeout_s=120,
            stdin=_ONE_CALL_IR.format(triple=target_triple).encode(),
        )


def write_bazel_package(output_dir: str, aot_dir: str, cxx_compiler: str) -> None:
    """Makes `output_dir` a Bazel repository whose `//:inliner_size_model` is the model plus the XLA runtime.

    Copies the runtime sources to xla_runtime/src/ and, to xla_runtime/include/, every TensorFlow header that they
    or the model header include (found with the compiler's -M), so the repository builds without TensorFlow.
    """
    tf_dir = tensorflow_dir()
    include_dir = os.path.join(tf_dir, "include")
    runtime_src = os.path.join(tf_dir, "xla_aot_runtime_src")
    headers = set()
    inputs = [os.path.join(runtime_src, s) for s in XLA_RUNTIME_SOURCES] + [os.path.join(aot_dir, "InlinerSizeModel.h")]
    for path in inputs:
        out = _run(
            [cxx_compiler, "-x", "c++", "-std=c++17", "-M", f"-I{include_dir}", path],
            f"listing the headers {os.path.basename(path)} includes",
            timeout_s=120,
        )
        for dep in out.stdout.decode().replace("\\\n", " ").split()[1:]:
            dep = os.path.realpath(dep)
            if dep.startswith(os.path.realpath(include_dir) + os.sep):
                headers.add(os.path.relpath(dep, os.path.realpath(include_dir)))
    for rel in sorted(headers):
        dst = os.path.join(output_dir, "xla_runtime", "include", rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(include_dir, rel), dst)
    for rel in XLA_RUNTIME_SOURCES:
        dst = os.path.join(output_dir, "xla_runtime", "src", rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(runtime_src, rel), dst)
    bazel_dir = os.path.join(_plugin_source_dir(), "bazel")
    for name in _BAZEL_FILES:
        shutil.copyfile(os.path.join(bazel_dir, name), os.path.join(output_dir, name))


def _clang_version(clang: str) -> str:
    out = _run([clang, "--version"], f"{clang} --version", timeout_s=60).stdout.decode()
    return out.splitlines()[0].strip() if out else ""


def _check_replaceable(output_dir: str) -> None:
    """Raises ExportError if `output_dir` holds files and is not an earlier export."""
    if (
        os.path.isdir(output_dir)
        and os.listdir(output_dir)
        and not os.path.isfile(os.path.join(output_dir, MANIFEST_FILENAME))
    ):
        raise ExportError(f"{output_dir} exists and is not an earlier export; choose another --output_dir")
    if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
        raise ExportError(f"{output_dir} exists and is not a directory; choose another --output_dir")


@gin.configurable(module="export_model")
def export_policy(
    policy: str,
    output_dir: str,
    *,
    clang: str = "clang-22",
    cxx_compiler: str = "clang++-22",
    llvm_major: int = 22,
    llvm_readelf: str = "llvm-readelf-22",
    target_triple: str = "x86_64-pc-linux",
    bazel_package: bool = True,
) -> ExportManifest:
    """Exports `policy` (a saved_policy dir, or the dir holding one) to `output_dir` (layout: module docstring).

    Raises ExportError, leaving `output_dir` as it was, when the policy does not fit `clang`'s inliner or a step fails.
    """
    start = time.monotonic()
    policy_dir = resolve_policy(policy)
    output_dir = os.path.abspath(output_dir)
    _check_replaceable(output_dir)
    os.makedirs(os.path.dirname(output_dir), exist_ok=True)
    provided = clang_release_features(clang)
    atomic_file.remove_stale_temporaries(os.path.dirname(output_dir), target=os.path.basename(output_dir))
    with atomic_file.staged_dir(output_dir) as staging:
        logging.info("Writing the deployable SavedModel of %s", policy_dir)
        model = write_model(policy_dir, os.path.join(staging, "saved_model"))
        logging.info("XLA AOT-compiling it for %s", target_triple)
        aot_dir = os.path.join(staging, "aot")
        read = aot_compile(os.path.join(staging, "saved_model"), aot_dir, target_triple)
        check_features(read, provided, clang)
        logging.info("Building %s (model reads %d features)", PLUGIN_FILENAME, len(read))
        plugin = os.path.join(staging, PLUGIN_FILENAME)
        build_plugin(aot_dir, plugin, cxx_compiler=cxx_compiler, llvm_major=llvm_major)
        symbols = exported_symbols(plugin, llvm_readelf)
        if symbols != (PLUGIN_ENTRY_POINT,):
            raise ExportError(f"{plugin} exports {list(symbols)}; expected only {PLUGIN_ENTRY_POINT}")
        smoke_test_plugin(clang, plugin)
        if bazel_package:
            write_bazel_package(staging, aot_dir, cxx_compiler)
        manifest = ExportManifest(
            policy=policy_dir,
            features=read,
            clang=clang,
            clang_version=_clang_version(clang),
            llvm_major=llvm_major,
            tensorflow_version=importlib.metadata.version("tensorflow"),
            target_triple=target_triple,
            plugin=PLUGIN_FILENAME,
            plugin_bytes=os.path.getsize(plugin),
            exported_symbols=symbols,
            quantile_boundaries=model.quantile_boundaries,
            seconds=round(time.monotonic() - start, 3),
        )
        manifest_path = os.path.join(staging, MANIFEST_FILENAME)
        atomic_file.write_bytes(manifest_path, manifest.to_json().encode())
        os.chmod(manifest_path, 0o644)
        _check_replaceable(output_dir)  # Then `staged_dir` swaps the new export in.
    logging.info("Exported %s to %s in %.1f s", policy_dir, output_dir, manifest.seconds)
    return manifest
