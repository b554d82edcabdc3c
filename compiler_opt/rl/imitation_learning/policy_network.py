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
