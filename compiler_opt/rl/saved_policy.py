"""Per-decision evaluation of an exported inlining policy (MLGO `saved_policy` layout, docs/CONTRACTS.md).

LLVM asks for thousands of decisions per module, so a TensorFlow call per decision is too slow. The trainer
therefore writes, next to the SavedModel, a sidecar `fast_policy.npz` holding everything the policy computes with:
the features it reads, their quantiles and normalization options, and the Dense layers' weights. `SavedPolicy`
evaluates that in numpy (tens of microseconds per decision, no TensorFlow import) and gives the SavedModel's
decisions. Without a sidecar (a policy from elsewhere), or when the sidecar was written for another SavedModel, it
calls the SavedModel's `action` signature instead.

Sidecar format (numpy .npz, no pickles), version 1:
  format_version int; saved_model_sha256 str (`saved_model_digest` of the SavedModel it describes);
  feature_names str [F] (sorted);
  quantiles float32 [sum n_f] and quantile_sizes int64 [F] (per feature, concatenated); with_sqrt bool;
  with_z_score_normalization bool; eps float64; activation str ("relu" | "tanh"); num_layers int;
  kernel_<i> float32 [in, out] and bias_<i> float32 [out] for i < num_layers, the last layer giving the logits of
  (do not inline, inline). The greedy decision is argmax(logits), ties to 0.

Near ties. The numpy path evaluates the Dense layers in float64 (so one decision and a batch give the same numbers),
while the SavedModel and the AOT-compiled plugin run float32 kernels whose summation order is their own. Their
logit margins (inline minus do-not-inline) therefore agree only to float32 rounding, and a decision whose margin is
within `TIE_MARGIN` of 0 may legitimately go either way. `compare_decisions` is the one rule every comparison of two
evaluations of the same policy uses: decisions must be equal wherever |margin| >= TIE_MARGIN; the near ties are
counted and reported, not hidden.

Usage:
  policy = SavedPolicy.load("root/saved_policy", available_features=header.feature_names)
  policy.action(observation.features)        # 0 or 1
  policy.prob_inline(observation.features)   # P(inline) under the stochastic (collect) policy
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from absl import logging

from compiler_opt.rl import atomic_file
from compiler_opt.rl.inlining import features as features_lib

FAST_POLICY_FILENAME = "fast_policy.npz"
_FORMAT_VERSION = 1
_ADVICE_NAME = "inlining_decision"
_TIME_STEP_INPUTS = ("step_type", "reward", "discount")

# |logit(inline) - logit(do not inline)| below which two float evaluations of one policy may decide differently.
# float32 keeps ~7 significant digits; logits of trained policies stay well below 100 in magnitude.
TIE_MARGIN = 1e-4


@dataclasses.dataclass(frozen=True)
class DecisionComparison:
    """Two evaluations of one policy on the same steps: how many decisions, how many differ, and of those how many
    are not near ties (|margin| >= TIE_MARGIN). `agree` is the verdict: no difference outside the near ties."""

    decisions: int
    differing: int
    differing_outside_ties: int
    near_ties: int

    @property
    def agree(self) -> bool:
        return self.differing_outside_ties == 0


def compare_decisions(actions_a, actions_b, margins) -> DecisionComparison:
    """Compares decisions int [T] of two evaluations of one policy, given the logit margins float [T] of either."""
    a, b = np.asarray(actions_a).reshape(-1), np.asarray(actions_b).reshape(-1)
    margins = np.asarray(margins, dtype=np.float64).reshape(-1)
    if not a.shape == b.shape == margins.shape:
        raise ValueError(f"decisions {a.shape} and {b.shape} and margins {margins.shape} differ in length")
    tie = np.abs(margins) < TIE_MARGIN
    differ = a != b
    return DecisionComparison(
        decisions=int(a.size),
        differing=int(differ.sum()),
        differing_outside_ties=int((differ & ~tie).sum()),
        near_ties=int(tie.sum()),
    )


class PolicyLoadError(ValueError):
    """The directory does not hold a usable policy (missing files, wrong signature, NaN outputs)."""


class PolicyFeatureError(PolicyLoadError):
    """The policy reads features that the compiler does not send."""


@dataclasses.dataclass(frozen=True, eq=False)
class FastPolicyParams:
    """Contents of the sidecar: the normalization and the MLP (kernel [in, out], bias [out] per layer)."""

    normalization: features_lib.Normalization
    kernels: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str
    saved_model_sha256: str = ""

    def save(self, path: str) -> None:
        """Writes the sidecar atomically (`atomic_file`)."""
        norm = self.normalization
        arrays = {
            "format_version": np.int64(_FORMAT_VERSION),
            "saved_model_sha256": np.str_(self.saved_model_sha256),
            "feature_names": np.array(norm.feature_names, dtype=np.str_),
            "quantiles": np.concatenate(norm.quantiles).astype(np.float32),
            "quantile_sizes": np.array([q.size for q in norm.quantiles], dtype=np.int64),
            "with_sqrt": np.bool_(norm.config.with_sqrt),
            "with_z_score_normalization": np.bool_(norm.config.with_z_score_normalization),
            "eps": np.float64(norm.config.eps),
            "activation": np.str_(self.activation),
            "num_layers": np.int64(len(self.kernels)),
        }
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases, strict=True)):
            arrays[f"kernel_{i}"] = np.asarray(kernel, dtype=np.float32)
            arrays[f"bias_{i}"] = np.asarray(bias, dtype=np.float32)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        atomic_file.write_with(path, write)

    @classmethod
    def load(cls, path: str) -> FastPolicyParams:
        try:
            # Opened here: np.load leaks its own file handle when the file is not a zip archive.
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
                version = int(data["format_version"])
                if version != _FORMAT_VERSION:
                    raise PolicyLoadError(f"{path}: sidecar format {version}, expected {_FORMAT_VERSION}")
                sizes = data["quantile_sizes"]
                flat = data["quantiles"]
                offsets = np.concatenate([[0], np.cumsum(sizes)])
                quantiles = tuple(flat[offsets[i] : offsets[i + 1]] for i in range(len(sizes)))
                config = features_lib.FeatureConfig(
                    dropped_features=(),
                    with_sqrt=bool(data["with_sqrt"]),
                    with_z_score_normalization=bool(data["with_z_score_normalization"]),
                    eps=float(data["eps"]),
                )
                names = tuple(str(n) for n in data["feature_names"])
                n_layers = int(data["num_layers"])
                return cls(
                    normalization=features_lib.Normalization(names, quantiles, config),
                    kernels=tuple(data[f"kernel_{i}"] for i in range(n_layers)),
                    biases=tuple(data[f"bias_{i}"] for i in range(n_layers)),
                    activation=str(data["activation"]),
                    saved_model_sha256=str(data["saved_model_sha256"]),
                )
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
            if isinstance(e, PolicyLoadError):
                raise
            raise PolicyLoadError(f"{path}: unreadable policy sidecar ({e}); re-export the policy") from None


def saved_model_digest(policy_dir: str) -> str:
    """sha256 over `policy_dir/saved_model.pb` and the files of `policy_dir/variables/` (names and contents), which
    ties a sidecar to the SavedModel it was written with: a sidecar beside a changed or damaged graph or weights is
    not used."""
    digest = hashlib.sha256()
    variables = os.path.join(policy_dir, "variables")
    names = sorted(os.listdir(variables)) if os.path.isdir(variables) else []
    for relative in ["saved_model.pb", *(os.path.join("variables", n) for n in names)]:
        with open(os.path.join(policy_dir, relative), "rb") as f:
            digest.update(relative.encode() + b"\0" + hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


class _NumpyLogits:
    """logits(X int64 [B, F] in feature_names order) -> float64 [B, 2], from the sidecar (float32 weights, float64
    arithmetic: each row's logits do not depend on the batch it is evaluated in)."""

    def __init__(self, params: FastPolicyParams):
        if params.activation not in ("relu", "tanh"):
            raise PolicyLoadError(f"sidecar activation {params.activation!r} is not supported")
        self._normalize = params.normalization.numpy_fn()
        self._layers = [
            (np.asarray(k, np.float64), np.asarray(b, np.float64))
            for k, b in zip(params.kernels, params.biases, strict=True)
        ]
        self._activation = params.activation

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = self._normalize(x).astype(np.float64)
        last = len(self._layers) - 1
        for i, (kernel, bias) in enumerate(self._layers):
            h = h @ kernel + bias
            if i < last:
                h = np.maximum(h, 0) if self._activation == "relu" else np.tanh(h)
        return h


def register_distribution_types() -> None:
    """Registers the TensorFlow Probability types a PolicySaver SavedModel may refer to (the Categorical of MLGO's
    policies and of every collect_policy; the Deterministic of TF-Agents' greedy policies), so that
    `tf.saved_model.load` can read them. tfp registers a distribution's saved type when the first instance is built,
    not when it is imported."""
    import tensorflow_probability as tfp

    tfp.distributions.Categorical(logits=[0.0, 0.0])
    tfp.distributions.Deterministic(loc=0.0)


class _SavedModelBackend:
    """The SavedModel itself: `action` signature for decisions, a categorical `distribution` for probabilities."""

    def __init__(self, path: str):
        import tensorflow as tf
        import tensorflow_probability as tfp

        self._tf, self._tfp = tf, tfp
        register_distribution_types()
        try:
            self._model = tf.saved_model.load(path)
        except (OSError, ValueError, IndexError, tf.errors.OpError) as e:  # IndexError: truncated variables
            raise PolicyLoadError(f"{path}: cannot load the SavedModel ({e})") from None
        if "action" not in self._model.signatures:
            raise PolicyLoadError(
                f"{path}: SavedModel has no `action` signature (signatures: {list(self._model.signatures)}); "
                "export policies with tf_agents' PolicySaver"
            )
        self._action = self._model.signatures["action"]
        inputs = self._action.structured_input_signature[1]
        self.feature_names = tuple(sorted(set(inputs) - set(_TIME_STEP_INPUTS)))
        for name in self.feature_names:
            spec = inputs[name]
            if spec.dtype != tf.int64 or spec.shape.num_elements() not in (1, None):
                raise PolicyLoadError(f"{path}: input {name!r} is {spec.dtype.name}{spec.shape}, expected int64 [1]")
        if _ADVICE_NAME not in self._action.structured_outputs:
            raise PolicyLoadError(
                f"{path}: `action` signature returns {list(self._action.structured_outputs)}, "
                f"expected {_ADVICE_NAME!r}"
            )
        self._fixed = {
            "step_type": tf.constant([1], tf.int32),
            "reward": tf.constant([0.0], tf.float32),
            "discount": tf.constant([1.0], tf.float32),
        }
        self._path = path
        self._prob_model = None

    def _inputs(self, row: np.ndarray) -> dict:
        tf = self._tf
        feeds = dict(self._fixed)
        for name, value in zip(self.feature_names, row, strict=True):
            feeds[name] = tf.constant([int(value)], tf.int64)
        return feeds

    def action(self, row: np.ndarray) -> int:
        return int(self._action(**self._inputs(row))[_ADVICE_NAME].numpy()[0])

    def _categorical(self, model, row: np.ndarray):
        """The Categorical distribution `model.distribution` gives for `row`, or None if it gives another kind."""
        distribution = getattr(model, "distribution", None)
        if distribution is None:
            return None
        from tf_agents.trajectories import time_step as ts

        feeds = self._inputs(row)
        step = ts.TimeStep(
            step_type=feeds.pop("step_type"),
            reward=feeds.pop("reward"),
            discount=feeds.pop("discount"),
            observation=feeds,
        )
        dist = distribution(step, ()).action
        return dist if isinstance(dist, self._tfp.distributions.Categorical) else None

    def prob_inline(self, row: np.ndarray) -> float:
        """P(inline) from the sibling `collect_policy` of the MLGO layout when there is one (a greedy policy's own
        distribution puts all mass on its decision); else from the saved `distribution` when it is categorical; else
        the greedy action as 0 or 1."""
        if self._prob_model is None:
            self._prob_model = False
            sibling = os.path.join(os.path.dirname(self._path), "collect_policy")
            candidates = [lambda: self._model]
            if os.path.isfile(os.path.join(sibling, "saved_model.pb")) and sibling != self._path:
                candidates.insert(0, lambda: self._tf.saved_model.load(sibling))
            for load in candidates:
                try:
                    model = load()
                    if self._categorical(model, row) is not None:
                        self._prob_model = model
                        break
                except (ValueError, TypeError, self._tf.errors.OpError) as e:
                    logging.warning("%s: no probabilities from its collect policy (%s)", self._path, e)
        if self._prob_model is False:
            return float(self.action(row))
        return float(self._categorical(self._prob_model, row).probs_parameter().numpy()[0, 1])


class SavedPolicy:
    """An exported inlining policy, ready for per-decision use. Build it with `SavedPolicy.load`.

    feature_names: the features the policy reads (sorted). Feature mappings passed to the methods map clang's
    feature names to int64 arrays ([1], [T] or [T, 1]); extra features (such as `inlining_default`) are ignored.
    """

    def __init__(self, path: str, feature_names: tuple[str, ...], logits_fn, backend):
        self.path = path
        self.feature_names = feature_names
        self._logits = logits_fn
        self._backend = backend

    @property
    def uses_fast_path(self) -> bool:
        return self._logits is not None

    @classmethod
    def from_params(cls, name: str, params: FastPolicyParams) -> SavedPolicy:
        """A policy evaluated in numpy from `params` alone, without a SavedModel (e.g. ES's perturbed policies); it
        decides exactly as an exported policy whose sidecar holds `params`. `name` stands for the path in messages."""
        return cls(name, params.normalization.feature_names, _NumpyLogits(params), None)

    @classmethod
    def load(
        cls, path: str, *, available_features: Iterable[str] | None = None, allow_fast_path: bool = True
    ) -> SavedPolicy:
        """Loads `path` (a `saved_policy`/`collect_policy` dir, or the dir holding `saved_policy`).

        available_features: the features the compiler sends; raises PolicyFeatureError naming the missing ones.
        allow_fast_path: False forces the SavedModel path even when a valid sidecar exists.
        Raises PolicyLoadError when the policy is unusable, including when it outputs NaN.
        """
        if os.path.isdir(os.path.join(path, "saved_policy")):
            path = os.path.join(path, "saved_policy")
        path = os.path.abspath(path)
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise PolicyLoadError(f"{path} holds no saved_model.pb; pass a `saved_policy` dir written by the trainer")
        sidecar = os.path.join(path, FAST_POLICY_FILENAME)
        policy = None
        if allow_fast_path and os.path.isfile(sidecar):
            params = FastPolicyParams.load(sidecar)
            if params.saved_model_sha256 == saved_model_digest(path):
                policy = cls(path, params.normalization.feature_names, _NumpyLogits(params), None)
            else:
                logging.warning("%s was written for another SavedModel; using the SavedModel itself", sidecar)
        if policy is None:
            backend = _SavedModelBackend(path)
            policy = cls(path, backend.feature_names, None, backend)
        if available_features is not None:
            missing = sorted(set(policy.feature_names) - set(available_features))
            if missing:
                raise PolicyFeatureError(
                    f"policy {path} reads features the compiler does not send: {missing}. Use the compiler the "
                    "policy was trained with, or retrain without them (gin: features.FeatureConfig.dropped_features)."
                )
        policy._check_finite()
        return policy

    def _check_finite(self) -> None:
        """Evaluates the policy at all-zero features; NaN there means broken weights or quantiles."""
        zeros = {name: np.zeros(1, np.int64) for name in self.feature_names}
        self.prob_inline(zeros)

    def _rows(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        try:
            return features_lib.stack_features(features, self.feature_names)
        except KeyError as e:
            raise PolicyFeatureError(f"policy {self.path} reads feature {e.args[0]!r}, which was not given") from None

    def _probs(self, x: np.ndarray) -> np.ndarray:
        if self._logits is not None:
            logits = self._logits(x).astype(np.float64)
            with np.errstate(invalid="ignore"):
                probs = np.exp(-np.logaddexp(0.0, logits[:, 0] - logits[:, 1]))
        else:
            probs = np.array([self._backend.prob_inline(row) for row in x], dtype=np.float64)
        if np.isnan(probs).any():
            bad = dict(zip(self.feature_names, x[np.isnan(probs)][0].tolist(), strict=True))
            raise PolicyLoadError(f"policy {self.path} outputs NaN for features {bad}")
        return probs

    def prob_inline_batch(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """P(inline) per step, float64 [T]."""
        return self._probs(self._rows(features))

    def prob_inline(self, features: Mapping[str, np.ndarray]) -> float:
        """P(inline) for one decision (features of one step)."""
        return float(self.prob_inline_batch(features)[0])

    def margin_batch(self, features: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """logit(inline) - logit(do not inline) per step, float64 [T], from the numpy path; None without one."""
        if self._logits is None:
            return None
        logits = self._logits(self._rows(features))
        return logits[:, 1] - logits[:, 0]

    def action_batch(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """Greedy decisions per step, int64 [T]."""
        x = self._rows(features)
        if self._logits is None:
            return np.array([self._backend.action(row) for row in x], dtype=np.int64)
        logits = self._logits(x)
        if np.isnan(logits).any():
            self._probs(x)
        return (logits[:, 1] > logits[:, 0]).astype(np.int64)

    def action(self, features: Mapping[str, np.ndarray]) -> int:
        """The greedy decision (0 or 1) for one decision."""
        return int(self.action_batch(features)[0])

    def vector_decider(self, feature_order: Sequence[str]) -> Callable[[np.ndarray], int]:
        """A faster `action` for callers holding all features as one int64 vector in `feature_order`
        (e.g. the compiler's header order): returns decide(vector int64 [len(feature_order)]) -> 0 | 1."""
        missing = sorted(set(self.feature_names) - set(feature_order))
        if missing:
            raise PolicyFeatureError(f"policy {self.path} reads features not in the given order: {missing}")
        index = np.array([list(feature_order).index(n) for n in self.feature_names], dtype=np.int64)
        if self._logits is None:
            return lambda vector: self._backend.action(np.asarray(vector)[index])
        logits_fn = self._logits

        def decide(vector: np.ndarray) -> int:
            logits = logits_fn(np.asarray(vector)[index][None, :])[0]
            if math.isnan(logits[0]) or math.isnan(logits[1]):
                self._probs(np.asarray(vector)[index][None, :])
            return int(logits[1] > logits[0])

        return decide
