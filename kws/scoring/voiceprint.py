"""Voiceprints: unit speaker embeddings, their mean, and cosine scores (pure numpy)."""
from __future__ import annotations

import numpy as np

from kws.signal.vectors import unit

__all__ = ["cosine", "leave_one_out", "snorm", "unit", "voiceprint"]


def voiceprint(embeddings: np.ndarray) -> np.ndarray:
    """The L2-normalised mean of unit embeddings (N, E) -> (E,)."""
    return unit(unit(embeddings).mean(axis=0)).astype(np.float32)


def cosine(embeddings: np.ndarray, vp: np.ndarray) -> np.ndarray:
    """Cosine of each row with the voiceprint."""
    return unit(embeddings) @ unit(vp)


def leave_one_out(embeddings: np.ndarray) -> np.ndarray:
    """Each clip's cosine to the voiceprint of the other clips: how a genuine test clip should score."""
    if len(embeddings) < 2:
        return np.ones(len(embeddings), np.float32)
    return np.array([cosine(embeddings[i:i + 1], voiceprint(np.delete(embeddings, i, axis=0)))[0]
                     for i in range(len(embeddings))], np.float32)


def snorm(raw: np.ndarray, enroll_cohort: np.ndarray, test_cohort: np.ndarray, top: int | None) -> np.ndarray:
    """Symmetric score normalisation of raw (E, T) cosines: the mean of z-norm (the enrollment's cosines to
    the cohort, E x C) and t-norm (the test's, T x C); `top`: adaptive, over each side's closest cohort."""
    def stats(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = np.sort(c, axis=1)[:, -top:] if top else c
        return c.mean(axis=1), c.std(axis=1) + 1e-6
    ze, se = stats(enroll_cohort)
    zt, st = stats(test_cohort)
    return 0.5 * ((raw - ze[:, None]) / se[:, None] + (raw - zt[None, :]) / st[None, :])
