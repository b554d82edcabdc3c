"""The inlining policy as one flat parameter vector, for evolution strategies.

The network family is the BC trainer's (`policy_network.InliningPolicyNetwork`): quantile normalization (fixed, not
learned) then Dense layers. Its learned parameters are flattened layer by layer, input to logits, each layer's kernel
[in, out] (row-major) then its bias [out]; `PolicyLayout` maps between that vector (float64 [size]) and the
`saved_policy.FastPolicyParams` of the numpy sidecar.

`FlatPolicy` is a picklable policy (the interface of `compiler_opt.rl.policies`) for one parameter vector. Workers
evaluate it with the sidecar's numpy code, no TensorFlow, so it decides exactly as the policy exported from the same
parameters. Its `cache_id` is a digest of the normalization, the layout and the float32 parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import numpy as np

from compiler_opt.rl import policies, protocol, saved_policy


@dataclasses.dataclass(frozen=True, eq=False)
class PolicyLayout:
    """The fixed part of a policy (normalization, activation) and the shapes of its Dense layers.

    kernel_shapes: (in, out) per layer, input to logits; the last layer's `out` is 2 (do not inline, inline).
    """

    normalization: object
    activation: str
    kernel_shapes: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, params: saved_policy.FastPolicyParams) -> PolicyLayout:
        shapes = tuple((int(k.shape[0]), int(k.shape[1])) for k in params.kernels)
        width = params.normalization.output_width
        if not shapes or shapes[0][0] != width or shapes[-1][1] != 2:
            raise ValueError(f"layers {shapes} do not map the normalization's {width} columns to 2 logits")
        for (_, out), (nxt, _), bias in zip(shapes, shapes[1:], params.biases, strict=False):
            if out != nxt or bias.shape != (out,):
                raise ValueError(f"layers {shapes} (biases {[b.shape for b in params.biases]}) do not chain")
        return cls(params.normalization, params.activation, shapes)

    @property
    def hidden_units(self) -> tuple[int, ...]:
        return tuple(out for _, out in self.kernel_shapes[:-1])

    @property
    def size(self) -> int:
        return sum(i * o + o for i, o in self.kernel_shapes)

    def flatten(self, params: saved_policy.FastPolicyParams) -> np.ndarray:
        """float64 [size]: each layer's kernel then bias."""
        parts = []
        for kernel, bias in zip(params.kernels, params.biases, strict=True):
            parts += [np.asarray(kernel, np.float64).ravel(), np.asarray(bias, np.float64).ravel()]
        theta = np.concatenate(parts)
        if theta.size != self.size:
            raise ValueError(f"parameters have {theta.size} values, the layout {self.kernel_shapes} {self.size}")
        return theta

    def unflatten(self, theta: np.ndarray) -> saved_policy.FastPolicyParams:
        """The sidecar parameters (float32) of the vector `theta` [size]."""
        theta = np.asarray(theta)
        if theta.shape != (self.size,):
            raise ValueError(f"parameter vector of shape {theta.shape}, expected ({self.size},)")
        kernels, biases, offset = [], [], 0
        for n_in, n_out in self.kernel_shapes:
            kernels.append(theta[offset : offset + n_in * n_out].reshape(n_in, n_out).astype(np.float32))
            offset += n_in * n_out
            biases.append(theta[offset : offset + n_out].astype(np.float32))
            offset += n_out
        return saved_policy.FastPolicyParams(
            normalization=self.normalization, kernels=tuple(kernels), biases=tuple(biases), activation=self.activation
        )

    @functools.cached_property
    def digest(self) -> str:
        """sha256 of everything but the parameters: features, quantiles, normalization options, activation, shapes."""
        norm = self.normalization
        h = hashlib.sha256()
        fixed = (norm.feature_names, dataclasses.astuple(norm.config), self.activation, self.kernel_shapes)
        h.update(repr(fixed).encode())
        for q in norm.quantiles:
            h.update(np.ascontiguousarray(q, dtype=np.float32).tobytes())
        return h.hexdigest()


@dataclasses.dataclass(frozen=True, eq=False)
class FlatPolicy:
    """A greedy policy with parameters `theta` (float32 [layout.size]) in `layout`; picklable.

    label: the policy's name (default `es:` and the start of its cache_id).
    """

    layout: PolicyLayout
    theta: np.ndarray
    label: str = ""

    extra_args: tuple[str, ...] = ()

    def __post_init__(self):
        theta = np.ascontiguousarray(self.theta, dtype=np.float32)
        if theta.shape != (self.layout.size,):
            raise ValueError(f"parameter vector of shape {theta.shape}, expected ({self.layout.size},)")
        theta.setflags(write=False)
        object.__setattr__(self, "theta", theta)

    @functools.cached_property
    def cache_id(self) -> str:
        h = hashlib.sha256(self.layout.digest.encode())
        h.update(self.theta.tobytes())
        return "es:" + h.hexdigest()

    @property
    def name(self) -> str:
        return self.label or self.cache_id[:15]

    def params(self) -> saved_policy.FastPolicyParams:
        return self.layout.unflatten(self.theta)

    def new_episode(self, header: protocol.Header):
        return policies.model_decider(saved_policy.SavedPolicy.from_params(self.name, self.params()), header, self.name)
