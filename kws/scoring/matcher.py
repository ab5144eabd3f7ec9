"""The learned matcher: a small CNN that reads the template-by-test frame distance matrix around the
best DTW match and says whether it holds the phrase, as the winning Auto-KWS system did.

DTW sums distances along one path; the CNN sees the whole neighbourhood of that path (a clean
diagonal, a broken one, a phrase that only half fits), which a single mean cannot express.
numpy at run time (weights in pretrained/matcher*.npz); the torch twin for training is
kws.training.model.MatcherCNN, trained by scripts/train_matcher.py.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from kws.scoring import dtw
from kws.config import MATCHER_GRID, PRETRAINED_DIR, FeatureConfig
from kws.errors import WeightsError

MATCHER_FILE = "matcher.npz"
GRID = MATCHER_GRID      # template frames x test frames, after resampling the matrix to a fixed size
TOP_TEMPLATES = 3        # a clip is judged against its 3 closest enrollment templates; the logits are averaged


def resample_rows(m: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of the rows of m to n rows."""
    if len(m) == 1:
        return np.repeat(m, n, axis=0)
    pos = np.linspace(0, len(m) - 1, n)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(m) - 1)
    w = (pos - lo)[:, None]
    return m[lo] * (1 - w) + m[hi] * w


def match_matrix(template: np.ndarray, frames: np.ndarray, match: dtw.Match, grid: tuple[int, int] = GRID
                 ) -> np.ndarray:
    """Cosine distances between the template and the matched test span (plus a quarter of the template
    length either side), resampled to `grid`."""
    pad = max(2, len(template) // 4)
    a, b = max(0, match.start - pad), min(len(frames), match.end + 1 + pad)
    if b - a < 2:
        a, b = 0, len(frames)
    cost = dtw.cosine_cost(template, frames[a:b])
    return resample_rows(resample_rows(cost, grid[0]).T, grid[1]).T.astype(np.float32)


@dataclass(frozen=True)
class Matcher:
    arrays: dict


@lru_cache(maxsize=2)
def load_matcher(path: str) -> Matcher:
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p} is missing; restore pretrained/ from git, train it with scripts/train_matcher.py, "
                           "or switch the matcher off (DetectConfig.matcher)")
    try:
        with np.load(p, allow_pickle=False) as z:
            return Matcher({k: z[k] for k in z.files})
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise WeightsError(f"{p}: damaged matcher weights ({e}); restore it from git") from e


def matcher_for(features: FeatureConfig) -> Matcher:
    return load_matcher(str(PRETRAINED_DIR / features.artefact(MATCHER_FILE)))


def _conv3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, O, H, W): 3x3 convolution, zero padding 1 (as torch's Conv2d(padding=1))."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, :, i:i + h, j:j + wd] for i in range(3) for j in range(3)], axis=2)  # N,C,9,H,W
    out = np.einsum("bckhw,ock->bohw", cols, w.reshape(w.shape[0], c, 9), optimize=True)
    return out + b[None, :, None, None]


def _pool2(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    x = x[:, :, :h // 2 * 2, :w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def matcher_logits(m: Matcher, mats: np.ndarray) -> np.ndarray:
    """(N, H, W) distance matrices -> (N,) logits: above 0, the matcher says "the phrase is there"."""
    a = m.arrays
    x = mats[:, None].astype(np.float32)
    for i in range(3):
        x = np.maximum(_conv3(x, a[f"conv{i}_w"], a[f"conv{i}_b"]), 0.0)
        if i < 2:
            x = _pool2(x)
    return (x.mean(axis=(2, 3)) @ a["out_w"].T + a["out_b"])[:, 0]
