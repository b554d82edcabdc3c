r"""Per-decision cost of an exported policy (compiler_opt/rl/saved_policy.py): numpy fast path vs the SavedModel.

Usage:
  .venv/bin/python bench/saved_policy.py [--policy=ROOT/saved_policy] [--decisions=5000]

Without --policy, exports a policy of the trainer's default shape (every clang-22 feature but inlining_default,
1000 quantiles each, MLP 64x64) with random weights. Times one decision at a time, as collection asks for them:
`action(features dict)`, `vector_decider(header order)(int64 vector)`, `prob_inline`, and the SavedModel's `action`
signature (the fallback). Prints JSON: microseconds per decision, wall time (`*_us`) and CPU time of this process
(`*_cpu_us`, all its threads; robust to other jobs sharing the cores).
"""

import json
import os
import tempfile
import time

import numpy as np
from absl import app, flags

from compiler_opt.rl import policy_saver, saved_policy
from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib
from compiler_opt.rl.inlining import features as features_lib
from compiler_opt.rl.inlining import task as task_lib

_POLICY = flags.DEFINE_string("policy", None, "A saved_policy dir (default: export a random one).")
_DECISIONS = flags.DEFINE_integer("decisions", 5000, "Decisions timed on the fast path.")
_TF_DECISIONS = flags.DEFINE_integer("tf_decisions", 300, "Decisions timed on the SavedModel path.")


def export_random_policy(root: str) -> str:
    rng = np.random.default_rng(0)
    vocab_dir = os.path.join(root, "vocab")
    os.makedirs(vocab_dir)
    names = tuple(sorted(set(task_lib.CLANG22_FEATURES) - {"inlining_default"}))
    for name in names:
        quantiles = np.sort(np.round(rng.lognormal(1.5, 2.0, 1000)))
        features_lib.write_buckets(features_lib.buckets_path(vocab_dir, name), quantiles)
    network = trainer_lib.build_network(names, vocab_dir, features_lib.FeatureConfig(), trainer_lib.TrainerConfig())
    saved_dir, _ = policy_saver.export_policies(network, os.path.join(root, "model"))
    return saved_dir


def per_call_us(fn, inputs) -> tuple[float, float]:
    """(wall, CPU) microseconds per call of fn over inputs."""
    start, cpu_start = time.perf_counter(), time.process_time()
    for x in inputs:
        fn(x)
    cpu = time.process_time() - cpu_start
    return round((time.perf_counter() - start) / len(inputs) * 1e6, 1), round(cpu / len(inputs) * 1e6, 1)


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
        vectors = np.round(rng.lognormal(1.5, 2.0, size=(_DECISIONS.value, len(task_lib.CLANG22_FEATURES)))).astype(
            np.int64
        )
        dicts = [
            {n: vectors[i, j : j + 1] for j, n in enumerate(task_lib.CLANG22_FEATURES)} for i in range(len(vectors))
        ]
        decide = fast.vector_decider(task_lib.CLANG22_FEATURES)
        results = {
            "policy": "random (default shape)" if _POLICY.value is None else path,
            "features": len(fast.feature_names),
            "fast_path_load_seconds": round(fast_load, 3),
            "saved_model_load_seconds": round(slow_load, 3),
        }
        for key, fn, inputs in (
            ("fast_action", fast.action, dicts),
            ("fast_vector_decider", decide, vectors),
            ("fast_prob_inline", fast.prob_inline, dicts),
            ("saved_model_action", slow.action, dicts[: _TF_DECISIONS.value]),
        ):
            results[key + "_us"], results[key + "_cpu_us"] = per_call_us(fn, inputs)
        results["speedup_action"] = round(results["saved_model_action_us"] / results["fast_action_us"], 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    app.run(main)
