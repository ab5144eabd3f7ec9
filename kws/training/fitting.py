"""Fitting a calibration offline (scripts/fit_calibration.py): the fusion weights and the global threshold.

Only ever on train-split task scores; kws/scoring/calibrate.py applies what these fit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kws.harness.metrics import ALPHA
from kws.scoring.calibrate import RANGE_PERCENTILES


@dataclass(frozen=True)
class Standardised:
    """Columns clipped to their training range and standardised, as Calibration.fuse will apply them."""
    z: np.ndarray        # (rows, columns), every row (NaN read as 0 before clipping)
    lo: np.ndarray
    hi: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @staticmethod
    def of(x: np.ndarray, ok: np.ndarray | None = None) -> "Standardised":
        """The range and statistics come from the rows `ok` (default: all)."""
        fit = x if ok is None else x[ok]
        lo, hi = np.percentile(fit, RANGE_PERCENTILES, axis=0)
        xc = np.clip(np.nan_to_num(x, nan=0.0), lo, hi)
        xf = xc if ok is None else xc[ok]
        mean, std = xf.mean(axis=0), xf.std(axis=0)
        std = np.where(std < 1e-6, 1.0, std)        # a column constant over its training range adds nothing
        return Standardised((xc - mean) / std, lo, hi, mean, std)


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


def fit_task_loss(x: np.ndarray, y: np.ndarray, groups: np.ndarray, w0: np.ndarray, b0: float,
                  l2: float = 1e-3, tau: float = 1.0, alpha: float = ALPHA) -> tuple[np.ndarray, float]:
    """Weights and bias refined, from (w0, b0), to minimise the platform's own loss: the mean over tasks of
    MR + alpha*FAR at fused score 0, each step of a decision smoothed into sigmoid(fused / tau).

    The logistic fit weighs every clip alike; this one weighs a miss by 1/positives of its task and a
    false alarm by alpha/negatives, as the score does, so the fusion spends its weights where the
    platform's errors are (docs/results.md, v5). Start it from the logistic fit shifted by its threshold."""
    from scipy.optimize import minimize  # fitting is offline
    _, task = np.unique(groups, return_inverse=True)
    n_tasks = task.max() + 1
    n_pos = np.bincount(task, weights=y, minlength=n_tasks)
    n_neg = np.bincount(task, weights=1 - y, minlength=n_tasks)
    w_miss = np.where(y == 1, 1 / np.maximum(n_pos[task], 1), 0) / n_tasks
    w_fa = np.where(y == 0, alpha / np.maximum(n_neg[task], 1), 0) / n_tasks

    def loss(p):
        accept = 1 / (1 + np.exp(-(x @ p[:-1] + p[-1]) / tau))
        grad_z = (w_fa - w_miss) * accept * (1 - accept) / tau
        value = np.sum(w_miss * (1 - accept) + w_fa * accept) + l2 * p[:-1] @ p[:-1]
        return value, np.append(x.T @ grad_z + 2 * l2 * p[:-1], grad_z.sum())

    p = minimize(loss, np.append(w0, b0), jac=True, method="L-BFGS-B").x
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


def fit_fusion(x: np.ndarray, y: np.ndarray, groups: np.ndarray, l2: float = 1e-2, objective: str = "task",
               task_l2: float = 1e-3, tau: float = 1.0) -> tuple[np.ndarray, float, float, float, str]:
    """(weights, bias, threshold, train score, the objective kept) of standardised columns x.

    objective "task": the logistic fit, refined by fit_task_loss, kept only if its thresholded train
    score is no worse (the smoothed loss can settle on refusing everything when the classes overlap)."""
    w, b = fit_logistic(x, y, l2)
    threshold, score = fit_threshold(x @ w + b, y, groups)
    if objective == "task":
        w2, b2 = fit_task_loss(x, y, groups, w, b - threshold, task_l2, tau)
        threshold2, score2 = fit_threshold(x @ w2 + b2, y, groups)
        if score2 <= score:
            return w2, b2, threshold2, score2, "task"
    return w, b, threshold, score, "logistic"


def fit_stream_loss(x: np.ndarray, hit_group: np.ndarray, w_miss: np.ndarray, w_fa: np.ndarray, w0: np.ndarray, b0: float,
                    l2: float = 1e-3, tau: float = 1.0) -> tuple[np.ndarray, float]:
    """Weights and bias refined, from (w0, b0), on a listener's loss over stream candidates: a positive is
    missed unless one of its candidates is accepted, each accepted negative is a false alarm.

    hit_group: the positive each candidate lies on (-1: none); w_miss: each positive's miss weight (1 / its
    stream's positives / streams); w_fa: each candidate's false-alarm weight (per_hour / its stream's hours /
    streams; 0 on positives). Accepting is smoothed into sigmoid(fused / tau), as in fit_task_loss."""
    from scipy.optimize import minimize  # fitting is offline
    on = hit_group >= 0
    groups = hit_group[on]

    def loss(p):
        z = (x @ p[:-1] + p[-1]) / tau
        accept = 1 / (1 + np.exp(-z))
        # log P(no candidate of the positive accepted) = sum of log(1 - accept) = -sum softplus(z)
        log_none = np.bincount(groups, weights=-np.logaddexp(0, z[on]), minlength=len(w_miss))
        none = np.exp(log_none)
        value = w_miss @ none + w_fa @ accept + l2 * p[:-1] @ p[:-1]
        grad_z = w_fa * accept * (1 - accept)
        grad_z[on] += -(w_miss * none)[groups] * accept[on]
        grad_z /= tau
        return value, np.append(x.T @ grad_z + 2 * l2 * p[:-1], grad_z.sum())

    p = minimize(loss, np.append(w0, b0), jac=True, method="L-BFGS-B").x
    return p[:-1], float(p[-1])
