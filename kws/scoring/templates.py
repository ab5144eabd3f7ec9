"""The enrolled templates and their DTW average, and the rows of any per-template array.

Every per-template array (DTW distances to clips, the cohort statistics of a profile) has one row per
enrollment take and, last, one for the averaged template. This type states that order once; code asks
for ``.takes`` or ``.average`` instead of indexing ``[:-1]`` and ``[-1]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Templates:
    """The keyword frames of each usable take (T_i x D) and their DTW average (T x D)."""
    takes: list[np.ndarray]
    average: np.ndarray

    def all(self) -> list[np.ndarray]:
        """Takes, then the average: the row order of every PerTemplate array."""
        return [*self.takes, self.average]


@dataclass(frozen=True)
class PerTemplate(Generic[T]):
    """Values per template, in Templates.all() order, split: the takes' rows and the average's row."""
    takes: T
    average: T

    @classmethod
    def of(cls, rows: np.ndarray | Sequence) -> "PerTemplate":
        """rows: one row per take, then one for the average (an array or a list of rows)."""
        return cls(rows[:-1], rows[-1])
