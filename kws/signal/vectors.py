"""Unit-length vectors: the one normalisation every embedding and keyword frame goes through."""
from __future__ import annotations

import numpy as np

EPS = 1e-8   # keeps an all-zero row zero instead of NaN


def unit(v: np.ndarray) -> np.ndarray:
    """v scaled to unit L2 length along its last axis (rows of a matrix, or one vector)."""
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + EPS)
