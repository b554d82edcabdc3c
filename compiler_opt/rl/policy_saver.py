"""The one export module: everything a saved inlining policy is made of (MLGO layout, docs/CONTRACTS.md).

`export_policies(network, output_dir)` writes, for the greedy policy (`saved_policy/`) and the stochastic one
(`collect_policy/`), each into a directory of its own:
  saved_model.pb, variables/   TF-Agents PolicySaver SavedModel (batch size 1, flat input names); the greedy one has
                               no `distribution` (it loads with plain `tf.saved_model.load`), the collect one's is a
                               tfp Categorical (as MLGO's). Signature `action`:
                               step_type int32 [1], reward float32 [1], discount float32 [1], one int64 [1] input per
                               feature (clang's names; also `inlining_default`, accepted and ignored as in MLGO's
                               policies unless the policy reads it) -> `inlining_decision` int64 [1]. Extra function
                               `normalize_observation`: {feature: int64 [B]} -> the network's input float32 [B, D].
  output_spec.json             [{"logging_name": "inlining_decision", "tensor_spec": {"name": OP, "port": N,
                               "type": "int64_t", "shape": [1]}}]: OP:N is the tensor the `action` SignatureDef of
                               the saved graph names for the output (read back from saved_model.pb, not assumed).
  model.tflite                 the TF Lite conversion of the SavedModel (builtin ops, custom ops allowed, as MLGO's
                               saver does); signature runner `action` with the SavedModel signature's input names.
  fast_policy.npz              the numpy sidecar (compiler_opt/rl/saved_policy.py), tied to saved_model.pb by SHA-256.
Each directory is assembled under a temporary name and renamed into place, so a reader never sees half an export.
The AOT route (compiler_opt/tools/export_model_lib.py) starts from `saved_policy/`.

Both trainers export through this module: weighted BC (rl/imitation_learning/weighted_bc_trainer_lib.py) and ES
(compiler_opt/es/es_trainer_lib.py).
"""

from __future__ import annotations

import json
import logging as logging_lib
import os
import warnings

import tensorflow as tf
from absl import logging

# tf_agents registers gin configurables when imported, so it is imported here, before a binary locks its gin config.
from tf_agents.policies import actor_policy, greedy_policy
from tf_agents.policies import policy_saver as tfa_policy_saver

from compiler_opt import console
from compiler_opt.rl import atomic_file, saved_policy
from compiler_opt.rl.imitation_learning import policy_network

SAVED_POLICY_DIR = "saved_policy"
COLLECT_POLICY_DIR = "collect_policy"
OUTPUT_SPEC_FILENAME = "output_spec.json"
TFLITE_FILENAME = "model.tflite"
ACTION_SIGNATURE = "action"
# Extra function of the exported SavedModels: {feature: int64 [B]} -> the network's normalized input [B, D].
NORMALIZE_FUNCTION = "normalize_observation"
ADVICE_NAME = "inlining_decision"

# TensorFlow DataType enum -> the C type names LLVM's model runners use in output_spec.json.
_C_TYPE_NAMES = {1: "float", 2: "double", 3: "int32_t", 4: "uint8_t", 6: "int8_t", 9: "int64_t", 10: "bool"}


class ExportError(ValueError):
    """A SavedModel lacks what an exported policy needs (the `action` signature or its decision output)."""


def policy_dir(path: str) -> str:
    """`path` itself, or `path/saved_policy` when `path` is the directory holding an export (absolute)."""
    if os.path.isdir(os.path.join(path, SAVED_POLICY_DIR)):
        path = os.path.join(path, SAVED_POLICY_DIR)
    return os.path.abspath(path)


def output_spec(saved_model_dir: str) -> list[dict]:
    """The output_spec.json entries of a SavedModel: for each output of its `action` SignatureDef (the decision
    `inlining_decision` first, then the others by name), the graph tensor it is read from, its C type and shape."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(saved_model_dir, "saved_model.pb")
    model = saved_model_pb2.SavedModel()
    try:
        with open(path, "rb") as f:
            model.ParseFromString(f.read())
    except (OSError, ValueError) as e:
        raise ExportError(f"{path}: unreadable SavedModel ({e})") from None
    graphs = model.meta_graphs
    signatures = [mg.signature_def[ACTION_SIGNATURE] for mg in graphs if ACTION_SIGNATURE in mg.signature_def]
    if not signatures:
        raise ExportError(f"{path}: no `{ACTION_SIGNATURE}` signature; save the policy with TF-Agents' PolicySaver")
    outputs = signatures[0].outputs
    if ADVICE_NAME not in outputs:
        raise ExportError(f"{path}: `{ACTION_SIGNATURE}` returns {sorted(outputs)}, not {ADVICE_NAME!r}")
    entries = []
    for name in [ADVICE_NAME, *sorted(set(outputs) - {ADVICE_NAME})]:
        info = outputs[name]
        op, _, port = info.name.partition(":")
        if info.dtype not in _C_TYPE_NAMES:
            raise ExportError(f"{path}: output {name!r} has TensorFlow dtype {info.dtype}, which has no C type name")
        entries.append(
            {
                "logging_name": name,
                "tensor_spec": {
                    "name": op,
                    "port": int(port or 0),
                    "type": _C_TYPE_NAMES[info.dtype],
                    "shape": [int(d.size) for d in info.tensor_shape.dim],
                },
            }
        )
    return entries


def write_output_spec(saved_model_dir: str) -> str:
    """Writes `saved_model_dir/output_spec.json` from the SavedModel's own graph; returns its path."""
    path = os.path.join(saved_model_dir, OUTPUT_SPEC_FILENAME)
    atomic_file.write_text(path, json.dumps(output_spec(saved_model_dir)) + "\n")
    return path


def write_tflite(saved_model_dir: str, path: str | None = None) -> str:
    """Converts the SavedModel's `action` signature to TF Lite (builtin ops; custom ops allowed, as MLGO does) and
    writes it to `path` (default `saved_model_dir/model.tflite`); returns the path."""

    path = path or os.path.join(saved_model_dir, TFLITE_FILENAME)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[ACTION_SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True
    with console.stderr_to_log("the TF Lite converter"):
        model = converter.convert()
    atomic_file.write_bytes(path, model)
    return path


class _GreedyPolicy(greedy_policy.GreedyPolicy):
    """TF-Agents' greedy policy without a `distribution`: PolicySaver then saves a `distribution` that fails when
    called, and the SavedModel holds no TensorFlow Probability type, so plain `tf.saved_model.load` reads it with
    nothing else imported (GreedyPolicy's own distribution is a tf_agents type that needs tf_agents to reload).
    Probabilities come from the sibling collect_policy."""

    def _action(self, time_step, policy_state, seed):
        step = super()._distribution(time_step, policy_state)
        return step._replace(action=tf.nest.map_structure(lambda d: d.loc, step.action))

    def _distribution(self, time_step, policy_state):
        raise NotImplementedError("the greedy saved_policy has no distribution; load collect_policy for one")


class _SkipDistributionWarning(logging_lib.Filter):
    """Drops PolicySaver's warning that `_GreedyPolicy` has no distribution (that is intended)."""

    def filter(self, record):
        return "Could not serialize policy.distribution()" not in record.getMessage()


def export_policies(network, output_dir: str, train_step=None) -> tuple[str, str]:
    """Writes output_dir/saved_policy (greedy) and output_dir/collect_policy (stochastic), each with the files of
    the module docstring, for `network` (an `InliningPolicyNetwork`); train_step: a tf int64 Variable saved as the
    policies' train step. Returns both directories."""
    os.makedirs(output_dir, exist_ok=True)
    atomic_file.remove_stale_temporaries(output_dir)  # e.g. the staged exports of a killed run
    feature_names = network.normalization.feature_names
    collect = actor_policy.ActorPolicy(
        time_step_spec=policy_network.time_step_spec(policy_network.input_feature_names(feature_names)),
        action_spec=policy_network.action_spec(),
        actor_network=network,
    )
    policies = {SAVED_POLICY_DIR: _GreedyPolicy(collect), COLLECT_POLICY_DIR: collect}
    weights = network.dense_weights()
    written = []
    for dirname, policy in policies.items():
        final = os.path.join(output_dir, dirname)
        with atomic_file.staged_dir(final) as tmp:
            # PolicySaver traces `distribution()` when it is built (the warning _SkipDistributionWarning drops).
            skip = _SkipDistributionWarning()
            logging.get_absl_logger().addFilter(skip)
            try:
                saver = tfa_policy_saver.PolicySaver(
                    policy, batch_size=1, use_nest_path_signatures=False, train_step=train_step
                )
                saver.register_function(
                    NORMALIZE_FUNCTION, network.normalized, policy_network.observation_spec(feature_names)
                )
                with warnings.catch_warnings():
                    # PolicySaver also saves `distribution()`, whose tfp output types TF can only reload when
                    # tensorflow_probability is imported (saved_policy.py does so); TF warns about that at save time.
                    warnings.filterwarnings(
                        "ignore", message="Encoding a StructuredValue with type tfp", category=UserWarning
                    )
                    saver.save(tmp)
            finally:
                logging.get_absl_logger().removeFilter(skip)
            write_output_spec(tmp)
            write_tflite(tmp)
            saved_policy.FastPolicyParams(
                normalization=network.normalization,
                kernels=tuple(k for k, _ in weights),
                biases=tuple(b for _, b in weights),
                activation=network.activation,
                saved_model_sha256=saved_policy.saved_model_digest(tmp),
            ).save(os.path.join(tmp, saved_policy.FAST_POLICY_FILENAME))
        written.append(final)
    logging.info("Exported %s", written)
    return written[0], written[1]
