"""Antithetic evolution strategies: perturbations, reward normalization, gradient estimate and the update.

Salimans, Ho, Chen, Sidor, Sutskever, "Evolution Strategies as a Scalable Alternative to Reinforcement Learning"
(arXiv 1703.03864). For parameters theta [d], noise scale sigma and P directions eps_k ~ N(0, I_d), the rewards
r_k+ = F(theta + sigma eps_k) and r_k- = F(theta - sigma eps_k) estimate the gradient of E[F(theta + sigma eps)] as

    g = 1 / (2 P sigma) * sum_k (u_k+ - u_k-) eps_k,

where u are the 2P rewards normalized together: centered ranks (ranks scaled to [-0.5, 0.5], ties share their mean
rank; robust to outliers such as a failed compile) or z-scores. All-equal rewards give g = 0. The ascent step is
Adam (Kingma and Ba, arXiv 1412.6980, beta1 0.9, beta2 0.999, eps 1e-8, with bias correction) or plain SGD.
Everything is numpy float64; optimizer state is plain arrays, saved in checkpoints.
"""

from __future__ import annotations

import dataclasses

import numpy as np

REWARD_NORMALIZATIONS = ("centered_ranks", "z_score")
OPTIMIZERS = ("adam", "sgd")
_ADAM_BETA1, _ADAM_BETA2, _ADAM_EPS = 0.9, 0.999, 1e-8


def antithetic_directions(rng: np.random.Generator, pairs: int, dim: int) -> np.ndarray:
    """P standard normal directions, float64 [P, dim]; perturbation k is +eps_k, perturbation P + k is -eps_k."""
    return rng.standard_normal((pairs, dim))


def centered_ranks(rewards: np.ndarray) -> np.ndarray:
    """Ranks of `rewards` [n] scaled to [-0.5, 0.5] (lowest -0.5); equal rewards share their mean rank."""
    rewards = np.asarray(rewards, dtype=np.float64)
    n = rewards.size
    if n < 2:
        return np.zeros(n)
    order = np.argsort(rewards, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n, dtype=np.float64)
    _, groups = np.unique(rewards, return_inverse=True)
    ranks = np.bincount(groups, weights=ranks)[groups] / np.bincount(groups)[groups]
    return ranks / (n - 1) - 0.5


def z_scores(rewards: np.ndarray) -> np.ndarray:
    """(r - mean) / std of `rewards` [n]; zeros when all are equal."""
    rewards = np.asarray(rewards, dtype=np.float64)
    std = rewards.std()
    if std == 0.0:
        return np.zeros_like(rewards)
    return (rewards - rewards.mean()) / std


def normalize(rewards: np.ndarray, method: str) -> np.ndarray:
    if method == "centered_ranks":
        return centered_ranks(rewards)
    if method == "z_score":
        return z_scores(rewards)
    raise ValueError(f"reward normalization {method!r} is not one of {REWARD_NORMALIZATIONS}")


def gradient(directions: np.ndarray, rewards: np.ndarray, sigma: float, method: str) -> np.ndarray:
    """The antithetic estimate g [dim] from directions [P, dim] and rewards [2P] (+eps_k first, then -eps_k)."""
    pairs = directions.shape[0]
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.shape != (2 * pairs,):
        raise ValueError(f"{pairs} directions need {2 * pairs} rewards, got shape {rewards.shape}")
    u = normalize(rewards, method)
    return (u[:pairs] - u[pairs:]) @ directions / (2.0 * pairs * sigma)


@dataclasses.dataclass(frozen=True)
class OptimizerState:
    """`steps` updates applied so far; Adam's first and second moment estimates (zeros for SGD), float64 [dim]."""

    steps: int
    m: np.ndarray
    v: np.ndarray

    @classmethod
    def initial(cls, dim: int) -> OptimizerState:
        return cls(0, np.zeros(dim), np.zeros(dim))


def ascend(
    theta: np.ndarray, grad: np.ndarray, state: OptimizerState, optimizer: str, learning_rate: float
) -> tuple[np.ndarray, OptimizerState]:
    """One ascent step along `grad`; returns the new parameters and optimizer state (inputs are not modified)."""
    if optimizer == "sgd":
        return theta + learning_rate * grad, dataclasses.replace(state, steps=state.steps + 1)
    if optimizer != "adam":
        raise ValueError(f"optimizer {optimizer!r} is not one of {OPTIMIZERS}")
    t = state.steps + 1
    m = _ADAM_BETA1 * state.m + (1.0 - _ADAM_BETA1) * grad
    v = _ADAM_BETA2 * state.v + (1.0 - _ADAM_BETA2) * grad * grad
    m_hat = m / (1.0 - _ADAM_BETA1**t)
    v_hat = v / (1.0 - _ADAM_BETA2**t)
    return theta + learning_rate * m_hat / (np.sqrt(v_hat) + _ADAM_EPS), OptimizerState(t, m, v)
