"""Fitting a calibration offline (scripts/fit_calibration.py): the fusion weights and the global threshold.

Only ever on train-split task scores; kws/scoring/calibrate.py applies what these fit.
"""
from __future__ import annotations

import numpy as np

from kws.harness.metrics import ALPHA


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> tuple[np.ndarray, float]:
    """Weights and bias of a class-balanced, L2-regularised logistic regression."""
    from scipy.optimize import minimize  # fitting is offline; predict should not pay for this import
    w_pos, w_neg = 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1)
    sw = np.where(y == 1, w_pos, w_neg)

    def loss(p):
        z = x @ p[:-1] + p[-1]
        nll = np.sum(sw * (np.logaddexp(0, z) - y * z))
        grad_z = sw * (1 / (1 + np.exp(-z)) - y)
        return nll + l2 * p[:-1] @ p[:-1], np.append(x.T @ grad_z + 2 * l2 * p[:-1], grad_z.sum())

    p = minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B").x
    return p[:-1], float(p[-1])


def fit_threshold(fused: np.ndarray, labels: np.ndarray, groups: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    """The global threshold minimising the mean per-task MR + alpha*FAR; returns (threshold, score)."""
    cands = np.unique(np.quantile(fused, np.linspace(0, 1, 2001)))
    total = np.zeros(len(cands))
    tasks = np.unique(groups)
    for g in tasks:
        f, y = fused[groups == g], labels[groups == g]
        pos, neg = f[y == 1], f[y == 0]
        mr = (pos[None, :] <= cands[:, None]).mean(axis=1) if len(pos) else 0.0
        far = (neg[None, :] > cands[:, None]).mean(axis=1) if len(neg) else 0.0
        total += mr + alpha * far
    # The middle of the best plateau, not its edge: the edge sits right on a training score.
    best = np.flatnonzero(total <= total.min() + 1e-9)
    return float((cands[best[0]] + cands[best[-1]]) / 2), float(total[best[0]] / len(tasks))
