"""The AutoSpeech score: the area under the learning curve (ALC), as AutoDL's scoring program computes it.

Each prediction made at time t (seconds since the task started) scores NAUC = 2 * AUC - 1, AUC being the
mean over classes of the one-against-rest ROC AUC. Time is log-scaled, t~ = log(1 + t/t0) / log(1 + T/t0)
(T the budget, t0 = ClassifyConfig.alc_t0_s), the curve is a step function starting at (0, 0) and held to
t~ = 1, and ALC is its area. Predictions after T do not count.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of one class (Mann-Whitney, ties counted half); nan when a side is empty."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(score)
    return float((r[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mean_auc(proba: np.ndarray, classes: list[str], truth: list[str]) -> float:
    """Mean one-against-rest ROC AUC over the classes present in truth (and absent from no side)."""
    t = np.asarray(truth)
    aucs = [roc_auc(proba[:, j], t == c) for j, c in enumerate(classes)]
    aucs = [a for a in aucs if np.isfinite(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def nauc(proba: np.ndarray, classes: list[str], truth: list[str]) -> float:
    return 2.0 * mean_auc(proba, classes, truth) - 1.0


def transform_time(t: np.ndarray | float, budget_s: float, t0: float) -> np.ndarray:
    return np.log1p(np.asarray(t, float) / t0) / np.log1p(budget_s / t0)


def curve_points(times_s: list[float], scores: list[float], budget_s: float, t0: float) -> tuple[list[float], list[float]]:
    """The step learning curve on the log time axis: from (0, 0), each prediction's score from its time on,
    the last held to 1; points after the budget dropped."""
    pts = sorted((t, s) for t, s in zip(times_s, scores) if 0 <= t <= budget_s)
    x = [0.0] + [float(transform_time(t, budget_s, t0)) for t, _ in pts] + [1.0]
    y = [0.0] + [s for _, s in pts] + [pts[-1][1] if pts else 0.0]
    return x, y


def alc(times_s: list[float], scores: list[float], budget_s: float, t0: float) -> float:
    """Area under the step learning curve (curve_points)."""
    x, y = curve_points(times_s, scores, budget_s, t0)
    return float(sum((x[i + 1] - x[i]) * y[i] for i in range(len(x) - 1)))
