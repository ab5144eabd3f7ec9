"""Dynamic time warping on frame sequences: pure numpy, no audio or models.

Step pattern (template i, test j): (1,1), (1,2) and (2,1). Local slopes stay within [1/2, 2],
so a template can match speech at most twice as fast or slow as it was enrolled, and every
template frame is charged exactly once, so a path's cost divided by the template length is a
mean frame distance comparable across templates. Each DP row depends only on earlier rows,
so a row is one vectorised numpy step over all test frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BARRIER = 2  # inf-cost columns between concatenated clips; the (1,2) step can skip only one


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)


def cosine_cost(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) cosine distances in [0, 2]."""
    return (1.0 - unit_rows(a) @ unit_rows(b).T).astype(np.float32)


def _shift(row: np.ndarray, k: int, fill: float = np.inf) -> np.ndarray:
    """row[j - k], `fill` where j < k."""
    out = np.full_like(row, fill)
    out[k:] = row[:-k]
    return out


def subsequence(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Free-start, free-end DTW of a template (rows) inside a test sequence (columns).

    Returns, for every end column j: the mean frame cost of the best path ending there, the
    column where that path starts, and the mean cost of its worse template half (a path that
    fits only half of a two-word phrase has one good half and one bad one).
    """
    n, m = cost.shape
    h = max(1, n // 2)
    cols = np.arange(m)
    prev2, start2 = np.full(m, np.inf, np.float32), cols.copy()
    prev, start = cost[0].copy(), cols.copy()
    half2, half = prev2, prev   # cost accumulated through row h-1 along each path
    for i in range(1, n):
        cands = np.stack([_shift(prev, 1), _shift(prev, 2), _shift(prev2, 1) + cost[i - 1]])
        starts = np.stack([_shift(start, 1, 0), _shift(start, 2, 0), _shift(start2, 1, 0)])
        pick = np.argmin(cands, axis=0)
        best = cands[pick, cols]
        row = cost[i] + best
        if i < h:
            new_half = row
        elif i == h:
            new_half = best
        else:
            new_half = np.stack([_shift(half, 1), _shift(half, 2), _shift(half2, 1)])[pick, cols]
        prev2, start2, prev, start = prev, start, row, starts[pick, cols].astype(np.int64)
        half2, half = half, new_half
    if n < 2:
        return prev, start, prev
    with np.errstate(invalid="ignore"):
        worst = np.maximum(half / h, (prev - half) / (n - h))
    return prev / n, start, np.where(np.isfinite(prev), worst, np.inf)


@dataclass(frozen=True)
class Match:
    distance: float    # mean cosine distance along the best path; inf when nothing fits
    start: int         # first matched test frame
    end: int           # last matched test frame (inclusive)
    worst_half: float  # mean distance of the worse-matching half of the template


def best_matches(template: np.ndarray, clips: list[np.ndarray]) -> list[Match]:
    """Best subsequence match of one template in each clip, all clips in one DP pass.

    Clips are concatenated with BARRIER inf-cost columns between them, so no path can cross.
    """
    unit_t = unit_rows(template)
    parts, offsets, pos = [], [], 0
    for c in clips:
        offsets.append(pos)
        parts.append(unit_rows(c))
        pos += len(c) + BARRIER
    dim = template.shape[1]
    big = np.concatenate([np.concatenate([p, np.zeros((BARRIER, dim), np.float32)]) for p in parts]) \
        if parts else np.zeros((0, dim), np.float32)
    cost = (1.0 - unit_t @ big.T).astype(np.float32)
    for off, c in zip(offsets, clips):
        cost[:, off + len(c): off + len(c) + BARRIER] = np.inf
    score, start, worst = subsequence(cost) if len(big) else (np.zeros(0), np.zeros(0, int), np.zeros(0))
    out = []
    for off, c in zip(offsets, clips):
        seg = score[off: off + len(c)]
        if len(seg) == 0 or not np.isfinite(seg).any():
            out.append(Match(float("inf"), 0, max(0, len(c) - 1), float("inf")))
            continue
        j = int(np.argmin(seg))
        out.append(Match(float(seg[j]), int(start[off + j]) - off, j, float(worst[off + j])))
    return out


def align(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """Full alignment path (fixed ends) between two sequences, same step pattern.

    Falls back to a linear path when their lengths differ by more than the slopes allow.
    """
    cost = cosine_cost(a, b)
    n, m = cost.shape
    if not (m <= 2 * n and n <= 2 * m) or n < 2 or m < 2:
        return [(i, int(round(i * (m - 1) / max(n - 1, 1)))) for i in range(n)]
    acc = np.full((n, m), np.inf, np.float32)
    back = np.zeros((n, m), np.int8)
    acc[0, 0] = cost[0, 0]
    for i in range(1, n):
        c2 = _shift(acc[i - 2], 1) + cost[i - 1] if i >= 2 else np.full(m, np.inf, np.float32)
        cands = np.stack([_shift(acc[i - 1], 1), _shift(acc[i - 1], 2), c2])
        back[i] = np.argmin(cands, axis=0)
        acc[i] = cost[i] + cands[back[i], np.arange(m)]
    if not np.isfinite(acc[-1, -1]):
        return [(i, int(round(i * (m - 1) / (n - 1)))) for i in range(n)]
    path, i, j = [], n - 1, m - 1
    while i > 0:
        path.append((i, j))
        step = back[i, j]
        if step == 2:
            path.append((i - 1, j))
            i, j = i - 2, j - 1
        else:
            i, j = i - 1, j - (1 if step == 0 else 2)
    path.append((0, j))
    return path[::-1]


def align_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean frame distance along the full alignment of a onto b."""
    cost = cosine_cost(a, b)
    return float(np.mean([cost[i, j] for i, j in align(a, b)]))


def average_template(templates: list[np.ndarray], iterations: int = 2) -> np.ndarray:
    """DTW barycentre averaging: start from the medoid, average every template's frames aligned to it."""
    if len(templates) == 1:
        return templates[0].copy()
    dist = np.array([[align_distance(a, b) if a is not b else 0.0 for b in templates] for a in templates])
    centre = templates[int(np.argmin(dist.sum(axis=1)))].copy()
    for _ in range(iterations):
        acc = np.zeros_like(centre)
        cnt = np.zeros(len(centre))
        for t in templates:
            for i, j in align(centre, t):
                acc[i] += t[j]
                cnt[i] += 1
        centre = (acc / np.maximum(cnt, 1)[:, None]).astype(np.float32)
    return centre
