"""Evolution strategies (ES) training of the inlining policy for code size, an RL baseline for BC-MAX.

The policy is the BC trainer's network (`policy_network.InliningPolicyNetwork`: the same quantile normalization and
MLP) with its Dense parameters flattened (`flat_policy.PolicyLayout`), so an ES policy and a BC policy are
interchangeable. Initial parameters: a warm start from an exported policy's `fast_policy.npz` (usually a BC policy
cloned from the heuristic), or from scratch (Glorot-uniform, as the BC trainer initializes) over a vocab.

Step t (seeded by (seed, t), so a resumed run repeats an uninterrupted one): draw `modules_per_step` of the
training modules and P = `perturbation_pairs` antithetic directions; compile every module under each of the 2P
perturbed policies theta +- sigma eps_k on the executor (numpy policies, no TensorFlow in workers); reward of a
perturbation = mean over the modules of (-Oz size - size) / -Oz size, `failure_reward` for a failed compile; then
the gradient estimate and update of `blackbox_optimizer` (reward normalization and optimizer from ESConfig).
-Oz sizes are the stock compiles of `evaluate_policy_lib` (cached); modules where the heuristic takes no inlining
decision are left out (every policy gives them the same size).

Outputs under root_dir:
  initial_policy.npz       the initial parameters with the fixed normalization (saved_policy sidecar format)
  checkpoints/             ckpt-<step>.npz after every step (checkpoints.py); a rerun resumes from the newest
  train/                   TensorBoard: reward/mean, reward/max, reward/min, grad_norm, step_norm, compiles_per_second,
                           failures
  compile_cache/           the -Oz and heuristic reference compiles (unless another cache is given)
  saved_policy/, collect_policy/   the final policy in MLGO layout (compiler_opt/rl/policy_saver.py); loads as
                           `saved:root_dir`
  es_summary.json          ESResult with the per-step history
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence

import gin
import numpy as np
from absl import logging

from compiler_opt.es import blackbox_optimizer, checkpoints, flat_policy, rollouts
from compiler_opt.rl import atomic_file, evaluate_policy_lib, policies, policy_saver, saved_policy
from compiler_opt.rl.imitation_learning import policy_network
from compiler_opt.rl.inlining import features as features_lib
from compiler_opt.rl.inlining import task as task_lib

INITIAL_POLICY_FILE = "initial_policy.npz"
CHECKPOINT_DIR = "checkpoints"
SUMMARY_FILE = "es_summary.json"


@gin.configurable(module="es")
@dataclasses.dataclass(frozen=True)
class ESConfig:
    """Settings of antithetic ES (Salimans et al., arXiv 1703.03864; `blackbox_optimizer`), which maximizes the
    expected reward of a perturbed policy, E[mean over modules of (-Oz size - size) / -Oz size]. See
    gin_configs/es.gin for the values used and why.

    num_steps: ES steps in total (a resumed run continues to it). perturbation_pairs: P, antithetic pairs per step
    (2P perturbed policies). sigma: perturbation scale, in parameter units. learning_rate: of the optimizer
    ("adam" or "sgd"). reward_normalization: "centered_ranks" or "z_score". modules_per_step: modules compiled under
    every perturbation in one step. failure_reward: a failed compile's term in a perturbation's reward (-1 is a
    module twice its -Oz size). hidden_units / activation: the MLP when starting from scratch (a warm start brings
    its own). seed: directions, module batches and initialization. max_checkpoints: kept on disk. timeout_s: per
    compile.
    """

    num_steps: int = 100
    perturbation_pairs: int = 6
    sigma: float = 0.02
    learning_rate: float = 0.0005
    optimizer: str = "sgd"
    reward_normalization: str = "centered_ranks"
    modules_per_step: int = 8
    failure_reward: float = -1.0
    hidden_units: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    seed: int = 0
    max_checkpoints: int = 3
    timeout_s: float = 600.0

    def __post_init__(self):
        if self.optimizer not in blackbox_optimizer.OPTIMIZERS:
            raise ValueError(f"es.ESConfig.optimizer={self.optimizer!r}: use one of {blackbox_optimizer.OPTIMIZERS}")
        if self.reward_normalization not in blackbox_optimizer.REWARD_NORMALIZATIONS:
            raise ValueError(
                f"es.ESConfig.reward_normalization={self.reward_normalization!r}: use one of "
                f"{blackbox_optimizer.REWARD_NORMALIZATIONS}"
            )
        if self.perturbation_pairs < 1 or self.modules_per_step < 1 or self.sigma <= 0 or self.num_steps < 0:
            raise ValueError(f"ES needs perturbation_pairs >= 1, modules_per_step >= 1, sigma > 0: {self}")


@dataclasses.dataclass(frozen=True)
class ReferenceModule:
    """A training module and its stock -Oz text size in bytes."""

    module: object
    oz_size: int


@dataclasses.dataclass(frozen=True)
class ESResult:
    """A training run's outcome (also root_dir/es_summary.json). compiles / seconds / compiles_per_second are over
    every step done (across resumptions); parameters: the length of the flat vector."""

    root_dir: str
    saved_policy_dir: str
    collect_policy_dir: str
    steps: int
    parameters: int
    modules: tuple[str, ...]
    left_out_modules: tuple[str, ...]
    compiles: int
    failures: int
    seconds: float
    compiles_per_second: float
    history: tuple[checkpoints.StepStats, ...]


class InitialPolicyError(ValueError):
    """The initial policy cannot be read, or does not match the run already in root_dir."""


def warm_start_params(path: str) -> saved_policy.FastPolicyParams:
    """The parameters of an exported policy (`saved_policy` dir or its parent), from its `fast_policy.npz`."""
    path = policy_saver.policy_dir(path)
    sidecar = os.path.join(path, saved_policy.FAST_POLICY_FILENAME)
    if not os.path.isfile(sidecar):
        raise InitialPolicyError(
            f"{path} has no {saved_policy.FAST_POLICY_FILENAME}: ES warm-starts from policies exported by this "
            "project's trainers (weighted_bc_trainer, es_trainer), whose sidecar holds the weights"
        )
    params = saved_policy.FastPolicyParams.load(sidecar)
    if params.saved_model_sha256 != saved_policy.saved_model_digest(path):
        raise InitialPolicyError(f"{sidecar} was written for another SavedModel; re-export the policy")
    return params


def scratch_params(
    vocab_dir: str, config: ESConfig, feature_config: features_lib.FeatureConfig
) -> saved_policy.FastPolicyParams:
    """Freshly initialized parameters (the BC trainer's initialization, seeded by config.seed) reading every feature
    of `vocab_dir` but feature_config.dropped_features."""
    if not os.path.isdir(vocab_dir):
        raise InitialPolicyError(f"no vocab dir {vocab_dir}; make it with compiler_opt.tools.generate_vocab")
    suffix = features_lib.BUCKETS_SUFFIX
    available = [name[: -len(suffix)] for name in os.listdir(vocab_dir) if name.endswith(suffix)]
    names = features_lib.policy_feature_names(available, feature_config)
    network = policy_network.network_from_vocab(
        names, vocab_dir, feature_config, tuple(config.hidden_units), config.activation, seed=config.seed
    )
    weights = network.dense_weights()
    return saved_policy.FastPolicyParams(
        normalization=network.normalization,
        kernels=tuple(k for k, _ in weights),
        biases=tuple(b for _, b in weights),
        activation=network.activation,
    )


def _initial_params(root_dir, warm_start, vocab_dir, config, feature_config) -> saved_policy.FastPolicyParams:
    """The run's initial parameters: those stored in root_dir by an earlier run, else the warm start or scratch ones
    (then stored)."""
    path = os.path.join(root_dir, INITIAL_POLICY_FILE)
    given = None
    if warm_start:
        given = warm_start_params(warm_start)
    if os.path.isfile(path):
        stored = saved_policy.FastPolicyParams.load(path)
        if given is not None:
            stored_layout, given_layout = flat_policy.PolicyLayout.of(stored), flat_policy.PolicyLayout.of(given)
            if stored_layout.digest != given_layout.digest or not np.array_equal(
                stored_layout.flatten(stored), given_layout.flatten(given)
            ):
                raise InitialPolicyError(
                    f"{root_dir} holds an ES run started from another policy than {warm_start}; "
                    "use a new root_dir to start from it"
                )
        return stored
    if given is None:
        if not vocab_dir:
            raise InitialPolicyError(f"{root_dir} holds no ES run: give a warm-start policy or a vocab dir")
        given = scratch_params(vocab_dir, config, feature_config)
    os.makedirs(root_dir, exist_ok=True)
    given.save(path)
    return given


def reference_sizes(
    modules: Sequence, executor, *, cache_dir: str | None, timeout_s: float, progress: bool
) -> tuple[list[ReferenceModule], list[str]]:
    """(modules usable for training with their -Oz sizes, names of those left out: failed compiles, no decisions)."""
    by_name = {m.name: m for m in modules}
    evaluations, _ = evaluate_policy_lib.evaluate(
        modules, policies.HeuristicPolicy(), executor, timeout_s=timeout_s, cache_dir=cache_dir, progress=progress
    )
    usable, left_out = [], []
    for e in evaluations:
        if e.ok and e.horizon > 0 and e.oz_size > 0:
            usable.append(ReferenceModule(by_name[e.module], e.oz_size))
        else:
            left_out.append(e.module)
            reason = e.error.splitlines()[:2] if not e.ok else "no inlining decisions"
            logging.info("ES leaves out %s: %s", e.module, reason)
    return usable, left_out


def perturbation_rewards(
    results: Sequence[rollouts.RolloutResult], oz_sizes: Sequence[int], perturbations: int, failure_reward: float
) -> np.ndarray:
    """float64 [perturbations]: per perturbation, the mean over the batch's modules (oz_sizes, in slot order) of
    (oz - size) / oz, with `failure_reward` for a failed compile."""
    terms = np.full((perturbations, len(oz_sizes)), failure_reward, dtype=np.float64)
    for r in results:
        if r.ok:
            oz = oz_sizes[r.slot]
            terms[r.perturbation, r.slot] = (oz - r.text_size) / oz
    return terms.mean(axis=1)


def es_step(
    theta: np.ndarray,
    state: blackbox_optimizer.OptimizerState,
    step: int,
    layout: flat_policy.PolicyLayout,
    references: Sequence[ReferenceModule],
    executor,
    config: ESConfig,
    task: task_lib.InliningForSizeTask,
) -> tuple[np.ndarray, blackbox_optimizer.OptimizerState, checkpoints.StepStats]:
    """One ES step from parameters `theta` (float64 [d]); returns the new parameters, optimizer state, statistics."""
    start = time.monotonic()
    rng = np.random.default_rng([config.seed, step])
    count = min(config.modules_per_step, len(references))
    batch = [references[i] for i in sorted(rng.choice(len(references), size=count, replace=False))]
    directions = blackbox_optimizer.antithetic_directions(rng, config.perturbation_pairs, theta.size)
    signs = [(1.0, k) for k in range(config.perturbation_pairs)] + [(-1.0, k) for k in range(config.perturbation_pairs)]
    candidates = [
        flat_policy.FlatPolicy(
            layout, theta + sign * config.sigma * directions[k], label=f"es-step{step}{'+-'[sign < 0]}{k}"
        )
        for sign, k in signs
    ]
    jobs = [
        rollouts.RolloutJob(ref.module, policy, p, slot, task, config.timeout_s)
        for p, policy in enumerate(candidates)
        for slot, ref in enumerate(batch)
    ]
    jobs.sort(key=lambda job: -getattr(job.module, "size_bytes", 0))
    results = [result for _, result in executor.map_unordered(rollouts.run_rollout, jobs)]
    failed = [r for r in results if not r.ok]
    if failed:
        first = failed[0]
        logging.warning(
            "step %d: %d of %d compiles failed, e.g. %s under perturbation %d: %s",
            step,
            len(failed),
            len(results),
            batch[first.slot].module.name,
            first.perturbation,
            first.error.splitlines()[:3],
        )
    rewards = perturbation_rewards(results, [ref.oz_size for ref in batch], len(candidates), config.failure_reward)
    grad = blackbox_optimizer.gradient(directions, rewards, config.sigma, config.reward_normalization)
    new_theta, new_state = blackbox_optimizer.ascend(theta, grad, state, config.optimizer, config.learning_rate)
    stats = checkpoints.StepStats(
        step=step,
        mean_reward=float(rewards.mean()),
        max_reward=float(rewards.max()),
        min_reward=float(rewards.min()),
        grad_norm=float(np.linalg.norm(grad)),
        step_norm=float(np.linalg.norm(new_theta - theta)),
        compiles=len(results),
        failures=len(failed),
        seconds=round(time.monotonic() - start, 3),
        modules=tuple(ref.module.name for ref in batch),
    )
    return new_theta, new_state, stats


def export(layout: flat_policy.PolicyLayout, theta: np.ndarray, output_dir: str, step: int = 0) -> tuple[str, str]:
    """Writes the policy with parameters `theta` as output_dir/saved_policy and collect_policy (MLGO layout), through
    compiler_opt/rl/policy_saver.py; returns both directories."""
    import tensorflow as tf

    params = layout.unflatten(theta)
    network = policy_network.InliningPolicyNetwork(layout.normalization, layout.hidden_units, layout.activation)
    network.create_variables()
    values = [w for pair in zip(params.kernels, params.biases, strict=True) for w in pair]
    variables = network.trainable_variables
    if [tuple(v.shape) for v in variables] != [w.shape for w in values]:
        raise ValueError(f"network variables {[v.shape for v in variables]} do not fit {layout.kernel_shapes}")
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)
    return policy_saver.export_policies(network, output_dir, tf.Variable(step, dtype=tf.int64))


def train(
    modules: Sequence,
    root_dir: str,
    executor,
    *,
    warm_start: str | None = None,
    vocab_dir: str | None = None,
    config: ESConfig | None = None,
    feature_config: features_lib.FeatureConfig | None = None,
    cache_dir: str | None = None,
    progress: bool = True,
) -> ESResult:
    """Trains (or resumes) ES on `modules` until config.num_steps and exports the policy under root_dir.

    warm_start: an exported policy to start from; vocab_dir: start from scratch over this vocab instead. A rerun in
    the same root_dir continues from its newest checkpoint (its initial policy is kept). cache_dir: compile cache of
    the reference compiles (default root_dir/compile_cache). Settings not given come from gin (ESConfig,
    features.FeatureConfig).
    """
    config = config or ESConfig()
    feature_config = feature_config or features_lib.FeatureConfig()
    os.makedirs(root_dir, exist_ok=True)
    initial = _initial_params(root_dir, warm_start, vocab_dir, config, feature_config)
    layout = flat_policy.PolicyLayout.of(initial)
    ckpt_dir = os.path.join(root_dir, CHECKPOINT_DIR)
    latest = checkpoints.Checkpoint.latest(ckpt_dir)
    if latest is None:
        theta, state, history = layout.flatten(initial), blackbox_optimizer.OptimizerState.initial(layout.size), ()
    else:
        if latest.theta.shape != (layout.size,):
            raise InitialPolicyError(f"{ckpt_dir}: checkpoint has {latest.theta.size} parameters, not {layout.size}")
        theta, state, history = latest.theta, latest.optimizer, latest.history
        logging.info("Resumed ES from step %d", latest.step)
    cache_dir = cache_dir or os.path.join(root_dir, "compile_cache")
    references, left_out = reference_sizes(
        modules, executor, cache_dir=cache_dir, timeout_s=config.timeout_s, progress=progress
    )
    if not references:
        raise ValueError(f"none of the {len(modules)} modules can train ES (see the log): {left_out}")
    if len(history) < config.num_steps:
        logging.info(
            "ES on %d modules (%d left out), %d parameters, %d perturbations x %d modules per step",
            len(references),
            len(left_out),
            layout.size,
            2 * config.perturbation_pairs,
            min(config.modules_per_step, len(references)),
        )
        theta, history = _train_steps(theta, state, history, layout, references, executor, config, root_dir, progress)
    return _finish(root_dir, layout, theta, history, references, left_out)


def _train_steps(theta, state, history, layout, references, executor, config, root_dir, progress):
    """Runs the steps after `history` up to config.num_steps, checkpointing each; returns (theta, history)."""
    import tensorflow as tf

    task = task_lib.InliningForSizeTask()
    writer = tf.summary.create_file_writer(os.path.join(root_dir, "train"))
    bar = None
    if progress:
        import tqdm

        bar = tqdm.tqdm(total=config.num_steps, initial=len(history), unit="step", dynamic_ncols=True)
    try:
        for step in range(len(history) + 1, config.num_steps + 1):
            theta, state, stats = es_step(theta, state, step, layout, references, executor, config, task)
            history = (*history, stats)
            checkpoints.Checkpoint(step, theta, state, history).save(
                os.path.join(root_dir, CHECKPOINT_DIR), config.max_checkpoints
            )
            with writer.as_default(step=step):
                for name, value in (
                    ("reward/mean", stats.mean_reward),
                    ("reward/max", stats.max_reward),
                    ("reward/min", stats.min_reward),
                    ("grad_norm", stats.grad_norm),
                    ("step_norm", stats.step_norm),
                    ("compiles_per_second", stats.compiles / max(stats.seconds, 1e-9)),
                    ("failures", stats.failures),
                ):
                    tf.summary.scalar(name, value)
            writer.flush()
            logging.info(
                "ES step %d: reward mean %.5f max %.5f, step norm %.4g, %d compiles in %.1f s",
                step,
                stats.mean_reward,
                stats.max_reward,
                stats.step_norm,
                stats.compiles,
                stats.seconds,
            )
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        writer.close()
    return theta, history


def _finish(root_dir, layout, theta, history, references, left_out) -> ESResult:
    """Exports the policy of the newest step (unless es_summary.json says it already is) and writes the summary."""
    summary_path = os.path.join(root_dir, SUMMARY_FILE)
    saved_dir = os.path.join(root_dir, policy_saver.SAVED_POLICY_DIR)
    collect_dir = os.path.join(root_dir, policy_saver.COLLECT_POLICY_DIR)
    steps = len(history)
    previous = None
    if os.path.isfile(summary_path):
        with open(summary_path) as f:
            previous = json.load(f)
    exported = previous is not None and previous["steps"] == steps and os.path.isdir(saved_dir)
    if not exported:
        export(layout, theta, root_dir, steps)
    compiles = sum(s.compiles for s in history)
    seconds = sum(s.seconds for s in history)
    result = ESResult(
        root_dir=root_dir,
        saved_policy_dir=saved_dir,
        collect_policy_dir=collect_dir,
        steps=steps,
        parameters=layout.size,
        modules=tuple(sorted(r.module.name for r in references)),
        left_out_modules=tuple(sorted(left_out)),
        compiles=compiles,
        failures=sum(s.failures for s in history),
        seconds=round(seconds, 3),
        compiles_per_second=round(compiles / seconds, 3) if seconds > 0 else 0.0,
        history=history,
    )
    atomic_file.write_text(summary_path, json.dumps(dataclasses.asdict(result), indent=2) + "\n")
    return result
