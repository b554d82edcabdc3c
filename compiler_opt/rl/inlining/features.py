"""The inlining task's features: which ones a policy reads, their vocab, and their normalization.

Vocab (MLGO format): a directory holding one `<feature>.buckets` file per feature, one float per line, the feature's
quantiles in non-decreasing order (1000 of them by default; see `compiler_opt/tools/generate_vocab.py`).

Normalization (MLGO's quantile normalization): a raw int64 feature value v with quantiles q[0..n-1] becomes
  r = #{i : q[i] <= float32(v)} * (1/n)         (its quantile rank in [0, 1], from TF's `Bucketize`)
and the network sees, per feature and in this order, the columns
  r, r*r, [sqrt(r) if with_sqrt], [(v - mean(q)) * (1 / (std(q) + eps)) if with_z_score_normalization].
(Multiplying by reciprocals, rather than dividing, keeps graph-optimized TF and numpy results bit-identical.)
Features are laid out in sorted name order. Arithmetic is float32. The same function exists twice, as a Keras layer
(inside the trainer and the exported SavedModel) and in numpy (the fast per-decision path); both give equal values.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterable, Mapping

import gin
import numpy as np

from compiler_opt.rl import atomic_file

BUCKETS_SUFFIX = ".buckets"

# Keys of a trajectory record's feature lists that are not compiler features (docs/CONTRACTS.md), including the
# names MLGO's records use: `inlining_decision` (the decision in RL logs), `policy_label`, `module_name`.
NON_FEATURE_KEYS = frozenset({"action", "reward", "label", "module_name", "inlining_decision", "policy_label"})


class VocabError(ValueError):
    """A vocab directory lacks a feature's `.buckets` file, or a file is malformed."""


@gin.configurable(module="features")
@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Which compiler features the policy reads and how they are normalized.

    dropped_features: features the policy does not read (not even as a SavedModel input).
    with_sqrt / with_z_score_normalization: add the sqrt(rank) / z-score column per feature (MLGO's options).
    eps: added to the quantiles' standard deviation in the z-score (avoids division by zero).
    missing_vocab: what training does with a feature the records carry but the vocab dir has no `.buckets` file for
      (MLGO's shipped vocabularies lack e.g. `switch_default_dest_penalty`): "error" stops with a VocabError naming
      the files and the fixes; "drop" logs a warning naming them and trains a policy that does not read them.
    """

    dropped_features: tuple[str, ...] = ("inlining_default",)
    with_sqrt: bool = True
    with_z_score_normalization: bool = False
    eps: float = 1e-8
    missing_vocab: str = "error"

    def __post_init__(self):
        if self.missing_vocab not in ("error", "drop"):
            raise ValueError(f"missing_vocab {self.missing_vocab!r}: use 'error' or 'drop'")

    @property
    def columns_per_feature(self) -> int:
        return 2 + int(self.with_sqrt) + int(self.with_z_score_normalization)


def policy_feature_names(available: Iterable[str], config: FeatureConfig) -> tuple[str, ...]:
    """The features a policy reads, in the normalization's (sorted) order: `available` minus non-features and drops."""
    dropped = set(config.dropped_features) | NON_FEATURE_KEYS
    names = tuple(sorted(set(available) - dropped))
    if not names:
        raise ValueError(f"no features left to learn from: {sorted(available)} minus {sorted(dropped)}")
    return names


def buckets_path(vocab_dir: str, feature: str) -> str:
    return os.path.join(vocab_dir, feature + BUCKETS_SUFFIX)


def write_buckets(path: str, quantiles: np.ndarray) -> None:
    """Writes one `.buckets` file atomically (`atomic_file`): one quantile per line, as a Python float repr."""
    atomic_file.write_text(path, "".join(f"{float(q)!r}\n" for q in quantiles))


def read_buckets(path: str) -> np.ndarray:
    """Reads one `.buckets` file as float32 quantiles [n]; raises VocabError naming the file when malformed."""
    try:
        with open(path, encoding="utf-8") as f:
            values = [float(line) for line in f if line.strip()]
    except FileNotFoundError:
        raise VocabError(
            f"missing vocab file {path}; regenerate the vocab from the same trajectories with "
            "`python -m compiler_opt.tools.generate_vocab --input=... --output_dir=...`"
        ) from None
    except ValueError as e:
        raise VocabError(f"{path}: not one float per line ({e})") from None
    quantiles = np.asarray(values, dtype=np.float32)
    if quantiles.size == 0 or not np.all(np.isfinite(quantiles)):
        raise VocabError(f"{path}: needs at least one finite quantile")
    if np.any(np.diff(quantiles) < 0):
        raise VocabError(f"{path}: quantiles must be non-decreasing")
    return quantiles


def features_with_vocab(vocab_dir: str, features: Iterable[str], config: FeatureConfig) -> tuple[str, ...]:
    """`features` that have a `.buckets` file in vocab_dir. For those without one, `config.missing_vocab` decides:
    "error" raises VocabError naming them; "drop" logs a warning naming them and leaves them out."""
    features = tuple(features)
    missing = [f for f in features if not os.path.isfile(buckets_path(vocab_dir, f))]
    if not missing:
        return features
    if config.missing_vocab == "error":
        read_vocab(vocab_dir, missing)
    from absl import logging

    logging.warning(
        "vocab dir %s has no .buckets file for %s: the policy will not read %s (features.FeatureConfig.missing_vocab "
        "= 'drop'); to use them, regenerate the vocab from the training records with compiler_opt.tools.generate_vocab",
        vocab_dir,
        missing,
        "it" if len(missing) == 1 else "them",
    )
    kept = tuple(f for f in features if f not in missing)
    if not kept:
        raise VocabError(f"vocab dir {vocab_dir} has no .buckets file for any of the features {list(features)}")
    return kept


def read_vocab(vocab_dir: str, features: Iterable[str]) -> dict[str, np.ndarray]:
    """Quantiles of each feature in `features`; one VocabError lists every missing file."""
    missing = [f for f in features if not os.path.isfile(buckets_path(vocab_dir, f))]
    if missing:
        raise VocabError(
            f"vocab dir {vocab_dir} has no .buckets file for {missing}; regenerate it from the trajectories "
            "the policy is trained on (`python -m compiler_opt.tools.generate_vocab`), or drop those features "
            "with the gin binding `features.FeatureConfig.dropped_features` (or all features without a file: "
            "`features.FeatureConfig.missing_vocab = 'drop'`)"
        )
    return {f: read_buckets(buckets_path(vocab_dir, f)) for f in features}


@dataclasses.dataclass(frozen=True, eq=False)
class Normalization:
    """Quantile normalization of a fixed, sorted list of features (see module docstring).

    quantiles: per feature, float32 [n_f]. Output: float32 [B, len(feature_names) * config.columns_per_feature].
    """

    feature_names: tuple[str, ...]
    quantiles: tuple[np.ndarray, ...]
    config: FeatureConfig

    @classmethod
    def from_vocab(cls, vocab: Mapping[str, np.ndarray], feature_names: Iterable[str], config: FeatureConfig):
        names = tuple(sorted(feature_names))
        missing = [n for n in names if n not in vocab]
        if missing:
            raise VocabError(f"no quantiles for features {missing}")
        return cls(names, tuple(np.asarray(vocab[n], dtype=np.float32) for n in names), config)

    @property
    def output_width(self) -> int:
        return len(self.feature_names) * self.config.columns_per_feature

    def z_score_params(self) -> tuple[np.ndarray, np.ndarray]:
        """Per feature, the mean of its quantiles and 1 / (their std + eps), float32 [F] each."""
        mean = np.array([np.mean(q.astype(np.float64)) for q in self.quantiles], dtype=np.float32)
        std = np.array([np.std(q.astype(np.float64)) for q in self.quantiles], dtype=np.float64)
        return mean, (1.0 / (std + self.config.eps)).astype(np.float32)

    def keras_layer(self):
        """A Keras layer mapping {feature: int64 [B]} to the normalized float32 [B, output_width]."""
        return _keras_layer_class()(self, name="quantile_normalization")

    def numpy_fn(self):
        """A numpy function mapping raw values float32/int64 [B, F] (columns in `feature_names` order) to
        float32 [B, output_width]; bit-for-bit the Keras layer's result."""
        return NumpyNormalization(self)


def _order_keys(values: np.ndarray) -> np.ndarray:
    """int64 keys in [0, 2**32) of float32 values, ordered as the values (no NaN; -0.0 sorts just below 0.0)."""
    bits = np.asarray(values, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, bits ^ 0x7FFFFFFF, bits) + 0x80000000


class NumpyNormalization:
    """The numpy twin of the Keras layer. All features' counts come from one `np.searchsorted` over the quantiles
    of every feature, keyed by (feature index, value) so that each feature only compares with its own; the output
    columns of every possible count are precomputed with the layer's float32 arithmetic and looked up."""

    def __init__(self, normalization: Normalization):
        quantiles = normalization.quantiles
        config = normalization.config
        self._num_features = len(quantiles)
        # Key of (feature i, value v): i * 2**32 + _order_keys(v); quantiles get +0.0 so -0.0 counts as 0.0.
        self._offsets = np.arange(self._num_features, dtype=np.int64) << 32
        self._keys = np.concatenate(
            [offset + _order_keys(q + np.float32(0.0)) for offset, q in zip(self._offsets, quantiles, strict=True)]
        )
        # Feature i's counts 0..n_i are rows start_i + i + count of the table; searchsorted gives start_i + count.
        tables = []
        for q in quantiles:
            r = np.arange(q.size + 1).astype(np.float32) * np.float32(1.0 / q.size)
            columns = [r, r * r] + ([np.sqrt(r)] if config.with_sqrt else [])
            tables.append(np.stack(columns, axis=-1))
        self._table = np.concatenate(tables)
        self._row_shift = np.arange(self._num_features, dtype=np.int64)
        self._z_score = config.with_z_score_normalization
        self._mean, self._inv_std = normalization.z_score_params()
        self._width = normalization.output_width

    def __call__(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values).astype(np.float32).reshape(-1, self._num_features)
        positions = np.searchsorted(self._keys, self._offsets + _order_keys(v), side="right")
        out = self._table[positions + self._row_shift]
        if self._z_score:
            out = np.concatenate([out, ((v - self._mean) * self._inv_std)[:, :, None]], axis=-1)
        return out.reshape(v.shape[0], self._width)


@functools.cache
def _keras_layer_class():
    import tensorflow as tf  # imported here: the numpy path must not pay for TensorFlow

    class QuantileNormalization(tf.keras.layers.Layer):
        """Keras form of `Normalization` (the trainer's and the exported policy's first layer)."""

        def __init__(self, normalization: Normalization, **kwargs):
            super().__init__(trainable=False, **kwargs)
            self._normalization = normalization

        def call(self, observation):
            norm = self._normalization
            mean, inv_std = norm.z_score_params()
            values = [tf.cast(tf.reshape(observation[name], [-1]), tf.float32) for name in norm.feature_names]
            counts = [
                tf.raw_ops.Bucketize(input=v, boundaries=[float(q) for q in quantiles])
                for v, quantiles in zip(values, norm.quantiles, strict=True)
            ]
            inv_sizes = np.array([1.0 / q.size for q in norm.quantiles], dtype=np.float32)
            r = tf.cast(tf.stack(counts, axis=1), tf.float32) * tf.constant(inv_sizes)
            columns = [r, r * r]
            if norm.config.with_sqrt:
                columns.append(tf.sqrt(r))
            if norm.config.with_z_score_normalization:
                columns.append((tf.stack(values, axis=1) - tf.constant(mean)) * tf.constant(inv_std))
            # [B, F, columns] -> [B, F * columns]: each feature's columns side by side, features in order.
            return tf.reshape(tf.stack(columns, axis=2), [-1, norm.output_width])

    return QuantileNormalization


def stack_features(features: Mapping[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """Stacks {name: [T] or [T, 1] array} into [T, len(names)] in `names` order (KeyError for a missing name)."""
    columns = [features[n] for n in names]
    if not columns:
        return np.zeros((0, 0), np.int64)
    lengths = {len(c) for c in columns}
    if len(lengths) > 1:
        raise ValueError(f"features have different lengths {sorted(lengths)}")
    steps = lengths.pop()
    flat = np.concatenate(columns)
    if flat.size != steps * len(columns):
        raise ValueError("every feature must hold one value per step")
    return flat.reshape(len(columns), steps).T
