"""The inlining policy's network and specs (MLGO's interface).

Observation: {feature: int64 []} for each feature the policy reads (clang's names); reward: float32 []; action:
`inlining_decision`, int64 [] in {0: do not inline, 1: inline}. The network quantile-normalizes the raw features
(`compiler_opt.rl.inlining.features`), runs an MLP and outputs a Categorical distribution over the two actions
(logits [B, 2]); the greedy policy takes its mode.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.networks import network
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from compiler_opt.rl.inlining import features as features_lib
from compiler_opt.rl.inlining import task

# Activations the numpy fast path (compiler_opt/rl/saved_policy.py) can evaluate.
SUPPORTED_ACTIVATIONS = ("relu", "tanh")
# Inputs every policy accepts without reading them, as MLGO's policies do: clang's own decision, which only
# interactive mode sends. With it the `action` signature takes exactly MLGO's inputs.
UNREAD_INPUTS = ("inlining_default",)


def observation_spec(feature_names: Sequence[str]) -> dict[str, tf.TensorSpec]:
    return {name: tf.TensorSpec(shape=(), dtype=tf.int64, name=name) for name in feature_names}


def time_step_spec(feature_names: Sequence[str]) -> ts.TimeStep:
    reward = tf.TensorSpec(shape=(), dtype=tf.float32, name="reward")
    return ts.time_step_spec(observation_spec(feature_names), reward)


def action_spec() -> tensor_spec.BoundedTensorSpec:
    return tensor_spec.BoundedTensorSpec(shape=(), dtype=tf.int64, minimum=0, maximum=1, name=task.ADVICE_NAME)


def input_feature_names(feature_names: Sequence[str]) -> tuple[str, ...]:
    """The observation inputs of a policy reading `feature_names`: those plus UNREAD_INPUTS, sorted."""
    return tuple(sorted(set(feature_names) | set(UNREAD_INPUTS)))


class InliningPolicyNetwork(network.Network):
    """Quantile normalization, then Dense layers (`hidden_units`, `activation`), then Dense(2) logits.
    Glorot-uniform initial kernels seeded from `seed`, zero biases. Its input spec is
    `input_feature_names(normalization.feature_names)`: the features it reads plus the UNREAD_INPUTS it ignores."""

    def __init__(
        self,
        normalization: features_lib.Normalization,
        hidden_units: Sequence[int],
        activation: str = "relu",
        seed: int = 0,
        name: str = "InliningPolicyNetwork",
    ):
        if activation not in SUPPORTED_ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {SUPPORTED_ACTIVATIONS}")
        super().__init__(
            input_tensor_spec=observation_spec(input_feature_names(normalization.feature_names)),
            state_spec=(),
            name=name,
        )
        self.normalization = normalization
        self.activation = activation
        self._normalize = normalization.keras_layer()
        init = tf.keras.initializers.GlorotUniform
        self._dense = [
            tf.keras.layers.Dense(units, activation=activation, kernel_initializer=init(seed + i), name=f"hidden_{i}")
            for i, units in enumerate(hidden_units)
        ]
        self._dense.append(tf.keras.layers.Dense(2, kernel_initializer=init(seed + len(hidden_units)), name="logits"))

    def normalized(self, observation) -> tf.Tensor:
        """The MLP's input: float32 [B, normalization.output_width] for observations {feature: int64 [B]}."""
        return self._normalize(observation)

    def logits(self, observation, training: bool = False) -> tf.Tensor:
        """float32 [B, 2] logits of (do not inline, inline) for observations {feature: int64 [B]}."""
        return self.logits_of_normalized(self._normalize(observation), training=training)

    def logits_of_normalized(self, normalized: tf.Tensor, training: bool = False) -> tf.Tensor:
        """float32 [B, 2] logits from `normalized(observation)` (lets the trainer normalize in its input pipeline)."""
        h = normalized
        for layer in self._dense:
            h = layer(h, training=training)
        return h

    def call(self, observation, step_type=None, network_state=(), training=False):
        del step_type
        logits = self.logits(observation, training=training)
        return tfp.distributions.Categorical(logits=logits, dtype=tf.int64), network_state

    @property
    def output_bias(self) -> tf.Variable:
        """The bias [2] of the logits layer (do not inline, inline)."""
        return self._dense[-1].bias

    def dense_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(kernel [in, out], bias [out]) of every Dense layer, input to logits, as float32 numpy arrays."""
        return [(layer.kernel.numpy(), layer.bias.numpy()) for layer in self._dense]


def ensemble(members: Sequence[InliningPolicyNetwork]) -> InliningPolicyNetwork:
    """One network whose logits are the mean of the members' logits (members: same normalization, activation and
    layer widths). It is an MLP of the same depth whose layers are N times as wide: the members' first kernels side
    by side, their hidden kernels block-diagonal, their output kernels stacked and divided by N (output bias: the
    members' mean). Exact up to float rounding because the activation is elementwise, so it saves, converts and runs
    in the numpy path as any single network does."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    first = members[0]
    layers = [m.dense_weights() for m in members]
    for m, weights in zip(members, layers, strict=True):
        if (
            m.normalization.feature_names != first.normalization.feature_names
            or m.activation != first.activation
            or [k.shape for k, _ in weights] != [k.shape for k, _ in layers[0]]
        ):
            raise ValueError("ensemble members must share features, activation and layer widths")
    n = len(members)
    hidden_units = [n * kernel.shape[1] for kernel, _ in layers[0][:-1]]
    combined = InliningPolicyNetwork(first.normalization, hidden_units, first.activation)
    combined.create_variables()
    last = len(layers[0]) - 1
    for i, layer in enumerate(combined._dense):
        kernels = [weights[i][0] for weights in layers]
        biases = [weights[i][1] for weights in layers]
        if i == last:
            kernel_in = kernels[0].shape[0]
            if i == 0:  # no hidden layers: the mean of linear models
                kernel = np.mean(kernels, axis=0)
            else:
                kernel = np.zeros((n * kernel_in, kernels[0].shape[1]), np.float32)
                for j, k in enumerate(kernels):
                    kernel[j * kernel_in : (j + 1) * kernel_in] = k / n
            bias = np.mean(biases, axis=0)
        elif i == 0:
            kernel, bias = np.concatenate(kernels, axis=1), np.concatenate(biases)
        else:
            rows, cols = kernels[0].shape
            kernel = np.zeros((n * rows, n * cols), np.float32)
            for j, k in enumerate(kernels):
                kernel[j * rows : (j + 1) * rows, j * cols : (j + 1) * cols] = k
            bias = np.concatenate(biases)
        layer.kernel.assign(kernel.astype(np.float32))
        layer.bias.assign(bias.astype(np.float32))
    return combined


def network_from_vocab(
    feature_names: Sequence[str],
    vocab_dir: str,
    feature_config: features_lib.FeatureConfig,
    hidden_units: Sequence[int],
    activation: str = "relu",
    seed: int = 0,
) -> InliningPolicyNetwork:
    """A freshly initialized network over `feature_names`, normalized by the quantiles in `vocab_dir` (its
    variables created)."""
    vocab = features_lib.read_vocab(vocab_dir, feature_names)
    normalization = features_lib.Normalization.from_vocab(vocab, feature_names, feature_config)
    network = InliningPolicyNetwork(normalization, hidden_units, activation, seed=seed)
    network.create_variables()
    return network
