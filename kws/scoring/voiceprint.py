"""Voiceprints: unit speaker embeddings, their mean, and cosine scores (pure numpy)."""
from __future__ import annotations

import numpy as np

from kws.signal.vectors import unit

__all__ = ["cosine", "leave_one_out", "unit", "voiceprint"]


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
