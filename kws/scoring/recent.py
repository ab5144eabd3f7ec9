"""A stream's recent past as its folder: test-set normalisation (calibrate's @set/@top) in streaming form.

On the platform a clip is also seen against the other clips of its folder, mostly negatives: how far it
stands out from them (calibrate.with_set_columns). A stream has no folder, but its recent candidates
are the same kind of population: other voices, the enrolled speaker's other words, now and then the
phrase. For each base column, the last `window` candidates of the phrase give

    <name>@run      (x - their mean) / their std
    <name>@runtop   (x - their TOP_PERCENTILE) / their std

and the first few candidates of a stream, when the window is still short, lean on the training
population's values (`prior`: mean, std and top of each column, worth `weight` candidates).
scripts/fit_stream.py fits a calibration on these columns from train-split streams, replaying the
candidates in stream order with this same class.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from kws.scoring.calibrate import TOP_PERCENTILE

RUN_SUFFIX = "@run"
RUNTOP_SUFFIX = "@runtop"


def recent_columns(name: str) -> tuple[str, str]:
    """The columns a score adds to a stream fit: <name>@run and <name>@runtop."""
    return f"{name}{RUN_SUFFIX}", f"{name}{RUNTOP_SUFFIX}"


def recent_bases(names: tuple[str, ...]) -> list[str]:
    """The base columns whose running statistics names use, in order."""
    out = [n.removesuffix(RUNTOP_SUFFIX).removesuffix(RUN_SUFFIX) for n in names if n.endswith((RUN_SUFFIX, RUNTOP_SUFFIX))]
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class RecentPrior:
    """What a stream's running statistics start from (fitted on train streams; Calibration.recent)."""
    window: int = 128                                   # candidates of the phrase remembered
    weight: float = 16.0                                # the prior counts as this many candidates
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    top: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, values: dict[str, np.ndarray], window: int, weight: float) -> "RecentPrior":
        """The prior of a training population of candidates."""
        v = {k: np.asarray(x, np.float64)[np.isfinite(x)] for k, x in values.items()}
        return cls(window, weight, {k: round(float(x.mean()), 6) for k, x in v.items()},
                   {k: round(float(x.std()), 6) for k, x in v.items()},
                   {k: round(float(np.percentile(x, TOP_PERCENTILE)), 6) for k, x in v.items()})


class RecentScores:
    """One phrase's recent candidates in one stream: push each candidate's scores, get its @run columns."""

    def __init__(self, names: tuple[str, ...], prior: RecentPrior):
        self.bases, self.prior = recent_bases(names), prior
        self.past = {b: deque(maxlen=prior.window) for b in self.bases}

    def push(self, scores: dict[str, float]) -> dict[str, float]:
        """The candidate's @run and @runtop columns, itself counted among its recent past (as a clip is
        among its folder's); a missing or non-finite score is left out of the statistics."""
        out: dict[str, float] = {}
        p, k = self.prior, self.prior.weight
        for b in self.bases:
            x = float(scores.get(b, np.nan))
            if np.isfinite(x):
                self.past[b].append(x)
            v = np.asarray(self.past[b], np.float64)
            n = len(v)
            mean = (v.sum() + k * p.mean[b]) / (n + k)
            var = (((v - mean) ** 2).sum() + k * (p.std[b] ** 2 + (p.mean[b] - mean) ** 2)) / (n + k)
            top = (n * (np.percentile(v, TOP_PERCENTILE) if n else 0.0) + k * p.top[b]) / (n + k)
            sd = np.sqrt(var) + 1e-3
            out[f"{b}{RUN_SUFFIX}"], out[f"{b}{RUNTOP_SUFFIX}"] = (x - mean) / sd, (x - top) / sd
        return out
