r"""Per-decision cost of an exported policy (compiler_opt/rl/saved_policy.py): numpy fast path vs the SavedModel.

Usage:
  .venv/bin/python bench/saved_policy.py [--policy=ROOT/saved_policy] [--decisions=5000]

Without --policy, exports a policy of the trainer's default shape (every clang-22 feature but inlining_default,
1000 quantiles each, MLP 64x64) with random weights. Times one decision at a time, as collection asks for them:
`action(features dict)`, `vector_decider(header order)(int64 vector)`, `prob_inline`, and the SavedModel's `action`
signature (the fallback). Prints JSON (microseconds per decision).
"""

import json
import os
import tempfile
import time

import numpy as np
from absl import app, flags

from compiler_opt.rl import saved_policy
from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib
from compiler_opt.rl.inlining import features as features_lib

_POLICY = flags.DEFINE_string("policy", None, "A saved_policy dir (default: export a random one).")
_DECISIONS = flags.DEFINE_integer("decisions", 5000, "Decisions timed on the fast path.")
_TF_DECISIONS = flags.DEFINE_integer("tf_decisions", 300, "Decisions timed on the SavedModel path.")

# clang-22's interactive-mode features in header order (shared/reference/clang22_interactive_header.json).
_HEADER_ORDER = (
    "sroa_savings", "sroa_losses", "load_elimination", "call_penalty", "call_argument_setup",
    "load_relative_intrinsic", "lowered_call_arg_setup", "indirect_call_penalty", "jump_table_penalty",
    "case_cluster_penalty", "switch_default_dest_penalty", "switch_penalty", "unsimplified_common_instructions",
    "num_loops", "dead_blocks", "simplified_instructions", "constant_args", "constant_offset_ptr_args",
    "callsite_cost", "cold_cc_penalty", "last_call_to_static_bonus", "is_multiple_blocks", "nested_inlines",
    "nested_inline_cost_estimate", "threshold", "callee_basic_block_count", "callsite_height", "node_count",
    "nr_ctant_params", "cost_estimate", "edge_count", "caller_users", "caller_conditionally_executed_blocks",
    "caller_basic_block_count", "callee_conditionally_executed_blocks", "callee_users", "is_callee_avail_external",
    "is_caller_avail_external", "inlining_default",
)  # fmt: skip


def export_random_policy(root: str) -> str:
    rng = np.random.default_rng(0)
    vocab_dir = os.path.join(root, "vocab")
    os.makedirs(vocab_dir)
    names = tuple(sorted(set(_HEADER_ORDER) - {"inlining_default"}))
    for name in names:
        quantiles = np.sort(np.round(rng.lognormal(1.5, 2.0, 1000)))
        features_lib.write_buckets(features_lib.buckets_path(vocab_dir, name), quantiles)
    network = trainer_lib.build_network(names, vocab_dir, features_lib.FeatureConfig(), trainer_lib.TrainerConfig())
    saved_dir, _ = trainer_lib.export_policies(network, os.path.join(root, "model"))
    return saved_dir


def per_call_us(fn, inputs) -> float:
    start = time.perf_counter()
    for x in inputs:
        fn(x)
    return (time.perf_counter() - start) / len(inputs) * 1e6


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as tmp:
        path = _POLICY.value or export_random_policy(tmp)
        start = time.perf_counter()
        fast = saved_policy.SavedPolicy.load(path)
        fast_load = time.perf_counter() - start
        start = time.perf_counter()
        slow = saved_policy.SavedPolicy.load(path, allow_fast_path=False)
        slow_load = time.perf_counter() - start
        rng = np.random.default_rng(1)
        vectors = np.round(rng.lognormal(1.5, 2.0, size=(_DECISIONS.value, len(_HEADER_ORDER)))).astype(np.int64)
        dicts = [{n: vectors[i, j : j + 1] for j, n in enumerate(_HEADER_ORDER)} for i in range(len(vectors))]
        decide = fast.vector_decider(_HEADER_ORDER)
        results = {
            "policy": "random (default shape)" if _POLICY.value is None else path,
            "features": len(fast.feature_names),
            "fast_path_load_seconds": round(fast_load, 3),
            "saved_model_load_seconds": round(slow_load, 3),
            "fast_action_us": round(per_call_us(fast.action, dicts), 1),
            "fast_vector_decider_us": round(per_call_us(decide, vectors), 1),
            "fast_prob_inline_us": round(per_call_us(fast.prob_inline, dicts), 1),
            "saved_model_action_us": round(per_call_us(slow.action, dicts[: _TF_DECISIONS.value]), 1),
        }
        results["speedup_action"] = round(results["saved_model_action_us"] / results["fast_action_us"], 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    app.run(main)
