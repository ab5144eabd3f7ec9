"""Dynamic time warping on frame sequences: pure numpy, no audio or models.

Step pattern (template i, test j): (1,1), (1,2) and (2,1). Local slopes stay within [1/2, 2],
so a template can match speech at most twice as fast or slow as it was enrolled, and every
template frame is charged exactly once, so a path's cost divided by the template length is a
mean frame distance comparable across templates. Each DP row depends only on earlier rows,
so a row is one vectorised numpy step over all test frames.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from kws.config import DTW_BARRIER
from kws.signal.vectors import unit

BARRIER = DTW_BARRIER   # kws.config owns it


class OutOfTime(Exception):
    """The deadline of time_limit passed inside a DTW pass."""


_deadline = [float("inf")]


@contextmanager
def time_limit(deadline: float) -> Iterator[None]:
    """Every DTW pass inside stops with OutOfTime once `deadline` (epoch seconds) has passed: checked
    once per template row, so no input (a huge template, a long clip) can hold predict past its budget."""
    old, _deadline[0] = _deadline[0], deadline
    try:
        yield
    finally:
        _deadline[0] = old


def _check_time() -> None:
    if time.time() > _deadline[0]:
        raise OutOfTime


def cosine_cost(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) cosine distances in [0, 2]."""
    return (1.0 - unit(a) @ unit(b).T).astype(np.float32)


def _shift(x: np.ndarray, k: int, fill: float = np.inf) -> np.ndarray:
    """x[..., j - k], `fill` where j < k (along the last axis)."""
    out = np.empty_like(x)
    out[..., :k] = fill
    out[..., k:] = x[..., :-k]
    return out


@dataclass(frozen=True)
class Match:
    distance: float    # mean cosine distance along the best path; inf when nothing fits
    start: int         # first matched test frame
    end: int           # last matched test frame (inclusive)
    worst_half: float  # mean distance of the worse-matching half of the template


MAX_CELLS = 1 << 22    # template-rows x test-columns held per DP pass (~16 MB per state array)


def _longest_first(templates: list[np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, lengths, padded): templates sorted longest first and zero-padded into one (K, n_max, dim)
    array, so that the templates still running at row i are always a leading slice."""
    order = np.argsort([-len(t) for t in templates], kind="stable")
    lengths = np.array([len(templates[o]) for o in order])
    padded = np.zeros((len(templates), int(lengths[0]), dim), np.float32)
    for r, o in enumerate(order):
        padded[r, :lengths[r]] = templates[o]
    return order, lengths, padded


def _cost_row(padded: np.ndarray, i: int, act: int, test_t: np.ndarray, blocked: np.ndarray) -> np.ndarray:
    """(act, m) cosine distances of row i of the first `act` templates to every test frame; blocked columns inf."""
    c = 1.0 - padded[:act, i] @ test_t
    c[:, blocked] = np.inf
    return c


def _subsequence_many(templates: list[np.ndarray], test: np.ndarray, blocked: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Free-start, free-end DTW of several unit-row templates inside one unit-row test sequence.

    Returns (K, m) arrays: for every template and end column, the mean frame cost of the best
    path ending there, the column where it starts, and the mean cost of its worse template half
    (a path that fits only half of a two-word phrase has one good half and one bad one).
    All templates advance one row per step, longest first; a template leaves the active set
    (a leading slice, so no copying) after its last row, which makes the Python loop run
    max(len) times instead of sum(len).
    """
    k, m = len(templates), len(test)
    order, lengths, padded = _longest_first(templates, test.shape[1])
    n_max = int(lengths[0])
    halves = np.maximum(1, lengths // 2)[:, None]

    def cost(i: int, act: int) -> np.ndarray:
        return _cost_row(padded, i, act, test.T, blocked)

    score, start_out, worst = (np.full((k, m), np.inf, np.float32), np.zeros((k, m), np.int64),
                               np.full((k, m), np.inf, np.float32))
    cols = np.broadcast_to(np.arange(m), (k, m))
    prev = cost(0, k)
    prev2 = np.full_like(prev, np.inf)
    start, start2 = cols.copy(), cols.copy()
    half, half2 = prev.copy(), prev2.copy()
    c_prev = prev
    act = k
    for i in range(n_max):
        _check_time()
        if i > 0:
            act = int(np.sum(lengths > i))
            prev, prev2, start, start2 = prev[:act], prev2[:act], start[:act], start2[:act]
            half, half2, c_prev = half[:act], half2[:act], c_prev[:act]
            c_i = cost(i, act)
            a, b, c = _shift(prev, 1), _shift(prev, 2), _shift(prev2, 1) + c_prev
            pick_b = b < a                      # ties keep the earlier candidate, as argmin would
            best = np.where(pick_b, b, a)
            pick_c = c < best
            best = np.where(pick_c, c, best)
            row = c_i + best
            new_start = np.where(pick_c, _shift(start2, 1, 0), np.where(pick_b, _shift(start, 2, 0), _shift(start, 1, 0)))
            carried = np.where(pick_c, _shift(half2, 1), np.where(pick_b, _shift(half, 2), _shift(half, 1)))
            h = halves[:act]
            new_half = np.where(i < h, row, np.where(i == h, best, carried))
            prev2, start2, half2 = prev, start, half
            prev, start, half, c_prev = row, new_start, new_half, c_i
        done = np.flatnonzero(lengths[:act] == i + 1)
        for r in done:
            n, h = int(lengths[r]), int(halves[r, 0])
            score[order[r]] = prev[r] / n
            start_out[order[r]] = start[r]
            if n < 2:
                worst[order[r]] = prev[r]
            else:
                with np.errstate(invalid="ignore"):
                    w = np.maximum(half[r] / h, (prev[r] - half[r]) / (n - h))
                worst[order[r]] = np.where(np.isfinite(prev[r]), w, np.inf)
    return score, start_out, worst


def _concatenate(clips: list[np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Unit-row clips joined with BARRIER blocked columns between them, so no path can cross."""
    parts, offsets, pos = [], [], 0
    for c in clips:
        offsets.append(pos)
        parts += [unit(c), np.zeros((BARRIER, dim), np.float32)]
        pos += len(c) + BARRIER
    big = np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, dim), np.float32)
    blocked = np.zeros(len(big), bool)
    for off, c in zip(offsets, clips):
        blocked[off + len(c): off + len(c) + BARRIER] = True
    return big, blocked, offsets


def _groups(templates: list[np.ndarray], columns: int):
    """Templates in groups that keep each DP pass within MAX_CELLS."""
    size = max(1, MAX_CELLS // max(columns, 1))
    for g in range(0, len(templates), size):
        yield [unit(t) for t in templates[g:g + size]]


def match_templates(templates: list[np.ndarray], clips: list[np.ndarray]) -> list[list[Match]]:
    """Best subsequence match of every template in every clip, with its path: result[template][clip]."""
    if not templates:
        return []
    big, blocked, offsets = _concatenate(clips, templates[0].shape[1])
    out: list[list[Match]] = []
    for chunk in _groups(templates, len(big)):
        if len(big):
            score, start, worst = _subsequence_many(chunk, big, blocked)
        for r in range(len(chunk)):
            row = []
            for off, c in zip(offsets, clips):
                seg = score[r, off: off + len(c)] if len(big) else np.zeros(0)
                if len(seg) == 0 or not np.isfinite(seg).any():
                    row.append(Match(float("inf"), 0, max(0, len(c) - 1), float("inf")))
                    continue
                j = int(np.argmin(seg))
                row.append(Match(float(seg[j]), int(start[r, off + j]) - off, j, float(worst[r, off + j])))
            out.append(row)
    return out


def template_distances(templates: list[np.ndarray], clips: list[np.ndarray]) -> np.ndarray:
    """(n_templates, n_clips) best-match distances only (inf: no fit): the cheap pass for impostor templates.

    The same DP as match_templates without the start and half bookkeeping, about 3x fewer array operations.
    """
    out = np.full((len(templates), len(clips)), np.inf)
    if not templates or not clips:
        return out
    big, blocked, offsets = _concatenate(clips, templates[0].shape[1])
    ends = [off + len(c) for off, c in zip(offsets, clips)]
    g0 = 0
    for chunk in _groups(templates, len(big)):
        score = _distances_many(chunk, big, blocked)
        for j, (a, b) in enumerate(zip(offsets, ends)):
            if b > a:
                out[g0:g0 + len(chunk), j] = score[:, a:b].min(axis=1)
        g0 += len(chunk)
    return out


def _distances_many(templates: list[np.ndarray], test: np.ndarray, blocked: np.ndarray) -> np.ndarray:
    """(K, m) mean path cost ending at each column; _subsequence_many without paths."""
    k, m = len(templates), len(test)
    order, lengths, padded = _longest_first(templates, test.shape[1])
    test_t = np.ascontiguousarray(test.T)
    score = np.full((k, m), np.inf, np.float32)
    prev = _cost_row(padded, 0, k, test_t, blocked)
    prev2 = np.full_like(prev, np.inf)
    c_prev = prev
    for i in range(int(lengths[0])):
        _check_time()
        act = int(np.sum(lengths > i)) if i else k
        if i:
            c_i = _cost_row(padded, i, act, test_t, blocked)
            best = np.full((act, m), np.inf, np.float32)
            np.minimum(prev[:act, :-1], prev2[:act, :-1] + c_prev[:act, 1:], out=best[:, 1:])
            np.minimum(best[:, 2:], prev[:act, :-2], out=best[:, 2:])
            prev2, prev, c_prev = prev[:act], c_i + best, c_i
        for r in np.flatnonzero(lengths[:act] == i + 1):
            score[order[r]] = prev[r] / lengths[r]
    return score


def best_matches(template: np.ndarray, clips: list[np.ndarray]) -> list[Match]:
    """Best subsequence match of one template in each clip."""
    return match_templates([template], clips)[0]


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


class OnlineMatch:
    """Subsequence DTW column by column: each new test frame adds one column of accumulated cost, so the
    best match of every template ending at that frame is known the moment the frame arrives.

    The same step pattern and costs as template_distances (slopes 1/2..2, every template frame charged
    once, free start and end); the templates' rows are stacked, so a column is a few vectorised steps
    whatever the number of templates. Where a match starts is not tracked (it would double the work);
    best_matches on the last columns finds it for the few matches that need it. step() commits columns;
    peek() scores columns that may still change (a stream's newest frames) without committing them.
    """

    def __init__(self, templates: list[np.ndarray]):
        self.lengths = np.array([len(t) for t in templates])
        self.rows = unit(np.concatenate(templates)).astype(np.float32)
        first = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.ends = first + self.lengths - 1
        pos = np.concatenate([np.arange(n) for n in self.lengths])   # row index inside its template
        self.first = pos == 0
        self.no_pair = np.where(pos[2:] >= 2, 0.0, np.inf).astype(np.float32)   # rows the (2,1) step cannot reach
        inf = np.full(len(self.rows), np.inf, np.float32)
        self.d1, self.d2 = inf, inf.copy()      # accumulated costs of the last two committed columns
        self.column = 0                         # index of the next column

    def _run(self, columns: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cols = unit(np.asarray(columns, np.float32))
        costs = 1.0 - cols @ self.rows.T                    # (n_columns, rows), one product for the hop
        dist = np.empty((len(cols), len(self.lengths)), np.float32)
        best = np.empty_like(d1)
        for k, c in enumerate(costs):
            np.minimum(d1[:-1], d2[:-1], out=best[1:])      # row r - 1, one or two columns back
            np.minimum(best[2:], d1[:-2] + c[1:-1] + self.no_pair, out=best[2:])   # r - 2 back, then r - 1 here
            best[0] = 0.0
            d = c + np.where(self.first, 0.0, best)
            d1, d2 = d, d1
            dist[k] = d[self.ends] / self.lengths
        return dist, d1, d2

    def step(self, columns: np.ndarray) -> np.ndarray:
        """Commit test columns; returns (n_columns, n_templates) mean path costs of each template's best
        match ending at each column (inf: none fits yet)."""
        dist, self.d1, self.d2 = self._run(columns, self.d1, self.d2)
        self.column += len(dist)
        return dist

    def peek(self, columns: np.ndarray) -> np.ndarray:
        """step() for columns after the committed ones, leaving the committed state as it was."""
        return self._run(columns, self.d1, self.d2)[0]
