"""Weighted behaviour cloning of the inlining policy: the learning step of BC-MAX (arXiv 2403.19462).

Inputs:
  trajectories: TFRecord shards of `tf.train.SequenceExample`, one per module (docs/CONTRACTS.md): int64 feature
    lists named by clang's features, `action` (int64, the decision to clone) and `label` (int64, the module's size
    bucket, read for non-uniform weights). The features learned from are those the records carry, minus
    `features.FeatureConfig.dropped_features`; they are normalized in the input pipeline by the network's own layer.
  vocab_dir: `<feature>.buckets` quantiles (compiler_opt/tools/generate_vocab.py) for every learned feature.
  profiles.jsonl (optional): per-module sizes of every policy, for the size-bucket weights (training_weights.py);
    or MLGO's `*_pol.json` / `*_max.json` pairs.

Outputs under root_dir:
  checkpoints/              tf.train.CheckpointManager checkpoints (network, optimizer, step); a rerun resumes.
  train/                    TensorBoard summaries: loss, accuracy, weighted_accuracy, auc, examples_per_second.
  ensemble_member_<i>/      with TrainerConfig.ensemble_size = N > 1, members 1..N-1 (seeds seed+i) keep their
                            checkpoints/ and train/ here; member 0's are the two above. The exported policy is
                            their ensemble (policy_network.ensemble: the mean of the members' logits).
  saved_policy/             greedy policy in MLGO layout, written by compiler_opt/rl/policy_saver.py (SavedModel,
                            output_spec.json, model.tflite, fast_policy.npz).
  collect_policy/           the stochastic policy (samples the Categorical), same inputs and files.
  training_summary.json     steps, final metrics, bucket weights, features, seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence

import gin
import numpy as np
import tensorflow as tf
from absl import logging

from compiler_opt import console
from compiler_opt.rl import atomic_file, policy_saver, saved_policy
from compiler_opt.rl.imitation_learning import policy_network, profiles, training_weights, trajectory_dataset
from compiler_opt.rl.inlining import features as features_lib


@gin.configurable(module="weighted_bc")
@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Training settings; see gin_configs/weighted_bc_trainer.gin for the values used and why.

    batch_size: examples (decisions) per step. num_steps: total optimizer steps (a resumed run continues to it).
    learning_rate: Adam's. weight_decay: decoupled weight decay per unit learning rate (AdamW's; 0 is Adam).
    label_smoothing: labels y become y(1 - s) + s/2 in the cross-entropy.
    weight_averaging: decay per step of an exponential moving average of the weights, which is what is exported (and
    checkpointed beside the raw weights); the decay is capped at (1 + step) / (10 + step) early on; 0 exports the
    last step's weights.
    decision_bias: added to the exported policy's inline logit (the greedy policy inlines where its logit margin
    exceeds -decision_bias); the checkpoints keep the trained bias.
    ensemble_size: members trained (seeds seed, seed + 1, ...) and exported as one network averaging their logits;
    each member parses the records and trains on its own.
    hidden_units / activation: the MLP. shuffle_buffer_size: decisions held for shuffling.
    records_per_parse: trajectory records parsed per `parse_sequence_example` call. cache_decisions: parse the
    records once and keep their decisions in memory (8 bytes per feature per decision). summary_interval /
    checkpoint_interval: in steps. max_checkpoints: kept on disk. seed: initialization and shuffling.
    codebase_balance: power p of the per-codebase factor D_c**-p on every decision's weight, D_c the codebase's
    decisions in the records (training_weights.codebase_balance_weights; needs a profiles.jsonl); 0 leaves the
    codebases' shares as the records have them.
    """

    batch_size: int = 256
    num_steps: int = 10000
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    weight_averaging: float = 0.0
    decision_bias: float = 0.0
    ensemble_size: int = 1
    hidden_units: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    shuffle_buffer_size: int = 65536
    records_per_parse: int = 16
    cache_decisions: bool = True
    summary_interval: int = 500
    checkpoint_interval: int = 2000
    max_checkpoints: int = 3
    seed: int = 0
    codebase_balance: float = 0.0


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """What a training run produced (also written as root_dir/training_summary.json). With an ensemble, `steps` and
    `metrics` are those of its members' training (the last summary window of the last member that trained)."""

    root_dir: str
    saved_policy_dir: str
    collect_policy_dir: str
    feature_names: tuple[str, ...]
    steps: int
    metrics: dict[str, float]
    bucket_weights: training_weights.BucketWeights
    seconds: float


class WeightedBCTrainer:
    """Weighted behaviour cloning, the learning step of BC-MAX (Alg. 1 of arXiv 2403.19462).

    Loss per batch of B decisions: (1/B) * sum_i w_i * BCE(a_i, sigmoid(l_i1 - l_i0)), where a_i in {0, 1} is the
    decision of the best trajectory, l_i the network's logits and w_i the size-bucket weight of the module.
    Optimizer: Keras Adam (AdamW with weight decay). Checkpoints the network, optimizer and step; resumes from the
    latest checkpoint.
    """

    def __init__(self, network: policy_network.InliningPolicyNetwork, config: TrainerConfig, root_dir: str):
        self.network = network
        self.config = config
        self.step = tf.Variable(0, dtype=tf.int64, name="step")
        if config.weight_decay:
            self.optimizer = tf.keras.optimizers.AdamW(
                learning_rate=config.learning_rate, weight_decay=config.weight_decay
            )
        else:
            self.optimizer = tf.keras.optimizers.Adam(learning_rate=config.learning_rate)
        self.optimizer.build(network.trainable_variables)
        if not 0.0 <= config.weight_averaging < 1.0:
            raise ValueError(f"weight_averaging must be in [0, 1), got {config.weight_averaging}")
        # The moving average of every trainable weight (empty when averaging is off).
        self.averaged = [
            tf.Variable(v, trainable=False, name=f"averaged_{i}")
            for i, v in enumerate(network.trainable_variables)
            if config.weight_averaging
        ]
        self._bce = tf.keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=config.label_smoothing)
        self.metrics = {
            "loss": tf.keras.metrics.Mean(name="loss"),
            "accuracy": tf.keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.5),
            "weighted_accuracy": tf.keras.metrics.BinaryAccuracy(name="weighted_accuracy", threshold=0.5),
            "auc": tf.keras.metrics.AUC(name="auc", from_logits=True),
        }
        tracked = {"averaged": self.averaged} if self.averaged else {}
        checkpoint = tf.train.Checkpoint(network=network, optimizer=self.optimizer, step=self.step, **tracked)
        self.checkpoints = tf.train.CheckpointManager(
            checkpoint, os.path.join(root_dir, "checkpoints"), max_to_keep=config.max_checkpoints
        )
        self._writer = tf.summary.create_file_writer(os.path.join(root_dir, "train"))

    def restore(self) -> int:
        """Restores the latest checkpoint if any; returns the step reached."""
        latest = self.checkpoints.latest_checkpoint
        if latest:
            try:
                self.checkpoints.checkpoint.restore(latest).assert_existing_objects_matched()
            except (ValueError, AssertionError) as e:
                raise ValueError(
                    f"checkpoint {latest} does not fit this network (other features or layer sizes?): {e}. "
                    "Train into a new root_dir or delete its checkpoints/."
                ) from None
            logging.info("Resumed from %s at step %d", latest, int(self.step.numpy()), extra=console.STEP)
        return int(self.step.numpy())

    @tf.function
    def _train_step(self, normalized, action, weight):
        label = tf.cast(tf.reshape(action, [-1, 1]), tf.float32)
        weight = tf.reshape(weight, [-1, 1])
        with tf.GradientTape() as tape:
            logits = self.network.logits_of_normalized(normalized, training=True)
            logit = logits[:, 1:2] - logits[:, 0:1]
            loss = self._bce(label, logit, sample_weight=weight)
        grads = tape.gradient(loss, self.network.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.network.trainable_variables, strict=False))
        self.step.assign_add(1)
        if self.averaged:
            step = tf.cast(self.step, tf.float32)
            decay = tf.minimum(tf.constant(self.config.weight_averaging, tf.float32), (1.0 + step) / (10.0 + step))
            for average, variable in zip(self.averaged, self.network.trainable_variables, strict=True):
                average.assign(decay * average + (1.0 - decay) * variable)
        self.metrics["loss"].update_state(loss)
        self.metrics["accuracy"].update_state(label, tf.sigmoid(logit))
        self.metrics["weighted_accuracy"].update_state(label, tf.sigmoid(logit), sample_weight=weight)
        self.metrics["auc"].update_state(label, logit)
        return loss

    def train(self, dataset: tf.data.Dataset, num_steps: int) -> dict[str, float]:
        """Trains until `self.step` reaches num_steps on batches (normalized features float32 [B, D], action int64
        [B], weight float32 [B]); returns the metrics of the last summary window."""
        results: dict[str, float] = {}
        step = int(self.step.numpy())
        if step >= num_steps:
            logging.info("Already at step %d >= num_steps %d; nothing to train", step, num_steps)
            return results
        window_start, window_examples = time.monotonic(), 0
        interval = self.config.summary_interval
        for normalized, action, weight in dataset:
            self._train_step(normalized, action, weight)
            step += 1
            window_examples += int(action.shape[0])
            last = step >= num_steps
            if step % interval == 0 or last:
                results = {name: float(m.result().numpy()) for name, m in self.metrics.items()}
                results["examples_per_second"] = window_examples / max(time.monotonic() - window_start, 1e-9)
                with self._writer.as_default(step=step):
                    for name, value in results.items():
                        tf.summary.scalar(name, value)
                logging.info("step %d: %s", step, {k: round(v, 4) for k, v in results.items()})
                for m in self.metrics.values():
                    m.reset_state()
                window_start, window_examples = time.monotonic(), 0
            if step % self.config.checkpoint_interval == 0 or last:
                self.checkpoints.save(checkpoint_number=step)
            if last:
                break
        self._writer.flush()
        return results

    def use_averaged_weights(self) -> None:
        """Sets the network's weights to their moving average (no-op when averaging is off); call after the last
        checkpoint, before exporting."""
        if not self.averaged:
            return
        for average, variable in zip(self.averaged, self.network.trainable_variables, strict=True):
            variable.assign(average)


def shift_decision(network: policy_network.InliningPolicyNetwork, decision_bias: float) -> None:
    """Adds `decision_bias` to the bias of `network`'s inline logit; call after the last checkpoint, before
    exporting (the checkpoints keep the trained bias)."""
    if decision_bias:
        bias = network.output_bias
        bias.assign(bias + tf.constant([0.0, decision_bias], dtype=bias.dtype))


def build_network(
    feature_names: Sequence[str], vocab_dir: str, feature_config: features_lib.FeatureConfig, config: TrainerConfig
) -> policy_network.InliningPolicyNetwork:
    return policy_network.network_from_vocab(
        feature_names, vocab_dir, feature_config, config.hidden_units, config.activation, seed=config.seed
    )


def load_module_weights(profiles_path: str | Sequence[str] | None, codebase_balance: float) -> dict[str, float] | None:
    """Per-module weight factors balancing the codebases (None when codebase_balance is 0)."""
    if not codebase_balance:
        return None
    if not profiles_path or not isinstance(profiles_path, str) or profiles_path.endswith(".json"):
        raise ValueError(
            f"weighted_bc.TrainerConfig.codebase_balance = {codebase_balance} needs this project's profiles.jsonl "
            f"(got {profiles_path!r}): it counts each codebase's decisions there; set it to 0 otherwise"
        )
    weights = training_weights.codebase_balance_weights(profiles.read_jsonl(profiles_path), codebase_balance)
    logging.info(
        "Codebase balance %s: factors from %.3g to %.3g over %d modules",
        codebase_balance,
        min(weights.values(), default=1.0),
        max(weights.values(), default=1.0),
        len(weights),
    )
    return weights


def load_bucket_weights(
    profiles_path: str | Sequence[str] | None,
    weighting: training_weights.WeightingConfig,
    regret_policies: Sequence[str] | None,
) -> training_weights.BucketWeights:
    """Weights per size bucket (`profiles.size_bucket`'s buckets); uniform without profiles. profiles_path: a
    profiles.jsonl, or MLGO's profile files in pairs (`*_pol.json`, `*_max.json`; `profiles.read_for_weights`)."""
    num_buckets = profiles.num_buckets()
    if not profiles_path or weighting.mode == "uniform":
        return training_weights.BucketWeights.uniform(num_buckets)
    module_profiles, mlgo_policies = profiles.read_for_weights(profiles_path)
    if regret_policies is None and mlgo_policies is not None:
        regret_policies = mlgo_policies
    return training_weights.compute_bucket_weights(module_profiles, weighting, num_buckets, regret_policies)


def train(
    trajectories: Sequence[str],
    vocab_dir: str,
    root_dir: str,
    *,
    profiles_path: str | Sequence[str] | None = None,
    regret_policies: Sequence[str] | None = None,
    config: TrainerConfig | None = None,
    feature_config: features_lib.FeatureConfig | None = None,
    weighting: training_weights.WeightingConfig | None = None,
) -> TrainingResult:
    """Trains (or resumes training) on `trajectories` (files or globs) and exports the policies under root_dir.

    profiles_path: profiles.jsonl for the size-bucket weights (uniform weights without it), or MLGO's profile files
      in pairs (`*_pol.json`, `*_max.json`).
    regret_policies: the learned policies whose regret drives the weights (default: every `saved:` policy in
      profiles.jsonl; every `*_pol.json` of MLGO's).
    Settings not given come from gin (TrainerConfig, features.FeatureConfig, training_weights.WeightingConfig).
    """
    start = time.monotonic()
    config = config or TrainerConfig()
    feature_config = feature_config or features_lib.FeatureConfig()
    weighting = weighting or training_weights.WeightingConfig()
    os.makedirs(root_dir, exist_ok=True)
    _remove_stale_temporaries(root_dir)

    files = trajectory_dataset.list_trajectory_files(trajectories)
    record_lists = trajectory_dataset.record_feature_names(files)
    feature_names = features_lib.policy_feature_names(record_lists, feature_config)
    feature_names = features_lib.features_with_vocab(vocab_dir, feature_names, feature_config)
    logging.info("Training on %d trajectory files, %d features: %s", len(files), len(feature_names), feature_names)
    bucket_weights = load_bucket_weights(profiles_path, weighting, regret_policies)
    logging.info("Size-bucket weights %s", bucket_weights.weights)
    module_weights = load_module_weights(profiles_path, config.codebase_balance)

    if len(set(bucket_weights.weights)) > 1 and trajectory_dataset.LABEL_KEY not in record_lists:
        raise trajectory_dataset.TrajectoryError(
            f"{files[0]}: records have no `{trajectory_dataset.LABEL_KEY}` feature list, needed for size-bucket "
            "weights; train with uniform weights (training_weights.WeightingConfig.mode = 'uniform')"
        )
    if config.ensemble_size < 1:
        raise ValueError(f"ensemble_size must be at least 1, got {config.ensemble_size}")
    members, metrics = [], {}
    for i in range(config.ensemble_size):
        member_config = dataclasses.replace(config, seed=config.seed + i)
        member_dir = root_dir if i == 0 else os.path.join(root_dir, f"ensemble_member_{i}")
        if i:
            _remove_stale_temporaries(member_dir)
        network = build_network(feature_names, vocab_dir, feature_config, member_config)
        trainer = WeightedBCTrainer(network, member_config, member_dir)
        trainer.restore()
        dataset = trajectory_dataset.training_examples(
            files,
            feature_names,
            bucket_weights.weights,
            batch_size=config.batch_size,
            shuffle_buffer_size=config.shuffle_buffer_size,
            records_per_parse=config.records_per_parse,
            seed=member_config.seed,
            cache=config.cache_decisions,
            normalize=network.normalized,
            module_weights=module_weights,
        )
        try:
            metrics = trainer.train(dataset, config.num_steps) or metrics
        except tf.errors.DataLossError as e:
            raise trajectory_dataset.unreadable_files_error(files, e) from None
        trainer.use_averaged_weights()
        members.append((network, trainer))
    network, trainer = members[0]
    if len(members) > 1:
        network = policy_network.ensemble([m for m, _ in members])
    shift_decision(network, config.decision_bias)
    saved_dir, collect_dir = policy_saver.export_policies(network, root_dir, trainer.step)
    result = TrainingResult(
        root_dir=root_dir,
        saved_policy_dir=saved_dir,
        collect_policy_dir=collect_dir,
        feature_names=tuple(feature_names),
        steps=int(trainer.step.numpy()),
        metrics=metrics,
        bucket_weights=bucket_weights,
        seconds=time.monotonic() - start,
    )
    summary = dataclasses.asdict(result)
    summary["trajectory_files"] = len(files)
    summary["ensemble_size"] = config.ensemble_size
    atomic_file.write_text(os.path.join(root_dir, "training_summary.json"), json.dumps(summary, indent=2) + "\n")
    return result


def _remove_stale_temporaries(root_dir: str) -> None:
    """A killed run leaves half-written exports and summaries in root_dir, and TF's `ckpt-N_temp` directories of a
    checkpoint being saved in checkpoints/; this run owns both."""
    for directory, also in ((root_dir, ()), (os.path.join(root_dir, "checkpoints"), ("*_temp",))):
        if removed := atomic_file.remove_stale_temporaries(directory, also=also):
            logging.info("removed %d temporaries of an interrupted run in %s", removed, directory)


def greedy_agreement(policy_dir: str, files: Sequence[str], max_examples: int = 100_000) -> float:
    """Fraction of recorded decisions (up to max_examples, in file order) that the exported policy repeats."""
    policy = saved_policy.SavedPolicy.load(policy_dir)
    dataset = trajectory_dataset.training_examples(
        files,
        policy.feature_names,
        (1.0,),
        batch_size=4096,
        shuffle_buffer_size=1,
        repeat=False,
    )
    agree = total = 0
    for observation, action, _ in dataset:
        decided = policy.action_batch({k: v.numpy() for k, v in observation.items()})
        agree += int(np.sum(decided == action.numpy()))
        total += int(action.shape[0])
        if total >= max_examples:
            break
    if total == 0:
        raise trajectory_dataset.TrajectoryError(f"no decisions in {list(files)}")
    return agree / total
