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
from typing import Callable, Iterator

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


def _schedule(lengths: np.ndarray) -> tuple[int, np.ndarray, dict[int, list[int]]]:
    """For templates sorted longest first: the number of rows, how many templates are active at each row,
    and which finish at each row."""
    n_max = int(lengths[0])
    active = (lengths[None, :] > np.arange(n_max)[:, None]).sum(axis=1)
    done: dict[int, list[int]] = {}
    for r, n in enumerate(lengths):
        done.setdefault(int(n) - 1, []).append(r)
    return n_max, active, done


def _ones(blocked: np.ndarray) -> np.ndarray:
    """1 where a test column may be matched, inf where it is blocked: a cost row is this minus the products."""
    return np.where(blocked, np.inf, 1.0).astype(np.float32)


def _subsequence_many(templates: list[np.ndarray], test: np.ndarray, blocked: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Free-start, free-end DTW of several unit-row templates inside one unit-row test sequence.

    Returns (K, m) arrays: for every template and end column, the mean frame cost of the best
    path ending there, the column where it starts, and the mean cost of its worse template half
    (a path that fits only half of a two-word phrase has one good half and one bad one).
    All templates advance one row per step, longest first; a template leaves the active set
    (a leading slice, so no copying) after its last row, which makes the Python loop run
    max(len) times instead of sum(len).
    A row's state is three planes (path cost, start column, first-half cost) moved together, in
    buffers with two fill columns in front, so the one- and two-column steps back are views: numpy's
    per-call overhead, not arithmetic, is what these small arrays cost.
    """
    k, m = len(templates), len(test)
    order, lengths, padded = _longest_first(templates, test.shape[1])
    n_max, active, done = _schedule(lengths)
    halves = np.maximum(1, lengths // 2)
    ones, test_t = _ones(blocked), test.T
    score, start_out, worst = (np.full((k, m), np.inf, np.float32), np.zeros((k, m), np.int64),
                               np.full((k, m), np.inf, np.float32))
    bufs = [np.empty((3, k, m + 2), np.float32) for _ in range(3)]   # this row, the row before, the next
    for b in bufs:
        b[:, :, :2] = np.array([np.inf, 0.0, np.inf], np.float32)[:, None, None]
    cols = np.arange(m, dtype=np.float32)    # exact as float32 below 2**24 columns
    # halves fall along the templates as their lengths do: at row i, those still in their first half are
    # the first past[i], and those whose first half ended at row i - 1 the next ones, up to upto[i].
    rows = np.arange(n_max)[:, None]
    past, upto = (halves[None, :] > rows).sum(axis=1), (halves[None, :] >= rows).sum(axis=1)
    c_prev = ones - padded[:, 0] @ test_t
    bufs[0][:, :, 2:] = np.stack([c_prev, np.broadcast_to(cols, c_prev.shape), c_prev])
    bufs[1][:, :, 2:] = np.stack([np.full_like(c_prev, np.inf), np.broadcast_to(cols, c_prev.shape),
                                  np.full_like(c_prev, np.inf)])
    cur, before, nxt = bufs
    for i in range(n_max):
        _check_time()
        act = int(active[i])
        if i > 0:
            c_i = ones - padded[:act, i] @ test_t
            s, s2, out = cur[:, :act], before[:, :act], nxt[:, :act, 2:]
            a, b, c = s[:, :, 1:-1], s[:, :, :-2], s2[:, :, 1:-1]    # steps (1,1), (1,2), and (2,1) via row i-1
            c_cost = c[0] + c_prev[:act]
            out[...] = a
            np.copyto(out, b, where=b[0] < a[0])                 # ties keep the earlier candidate, as argmin would
            pick_c = c_cost < out[0]
            np.copyto(out[0], c_cost, where=pick_c)
            np.copyto(out[1:], c[1:], where=pick_c)
            k_past, k_upto = past[i], upto[i]                    # slices, not masks: cheaper per row
            if k_upto > k_past:                                  # their first half ends at row i - 1
                out[2, k_past:k_upto] = out[0, k_past:k_upto]
            out[0] += c_i
            if k_past:
                out[2, :k_past] = out[0, :k_past]
            cur, before, nxt = nxt, cur, before
            c_prev = c_i
        for r in done.get(i, ()):
            path, start, half = cur[:, r, 2:]
            n, h = int(lengths[r]), int(halves[r])
            finite = np.isfinite(path)
            score[order[r]] = path / n
            start_out[order[r]] = np.where(finite, start, 0)
            if n < 2:
                worst[order[r]] = path
            else:
                with np.errstate(invalid="ignore"):
                    w = np.maximum(half / h, (path - half) / (n - h))
                worst[order[r]] = np.where(finite, w, np.inf)
    return score, start_out, worst


# _paths keeps every row of the DP (two float32 planes) and backtracks only the ends asked for: about half the
# array operations of _subsequence_many, which carries start and half along every cell in O(K·m) memory. It is
# used while its rows fit in this many cells (16 MB); the same numbers either way.
BACKTRACK_CELLS = 1 << 21


def _paths(templates: list[np.ndarray], test: np.ndarray, blocked: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """_subsequence_many's (K, m) mean path costs, with every row kept for _backtrack: (score, cost, path, row_of):
    cost[i, r] the frame costs and path[i, r] the accumulated path costs of row i of the templates sorted longest
    first, row_of[t] the place of template t in that order. The same recurrences, products and sums as
    _subsequence_many, so the same numbers bit for bit. (_distances_many runs these recurrences too, but on a
    contiguous copy of the test and dividing by a numpy length: either can round a last bit differently, so
    each pass keeps its own twin's arithmetic.)"""
    k, m = len(templates), len(test)
    order, lengths, padded = _longest_first(templates, test.shape[1])
    n_max, active, done = _schedule(lengths)
    ones, test_t = _ones(blocked), test.T
    cost = np.empty((n_max, k, m), np.float32)
    path = np.empty((n_max, k, m), np.float32)
    np.subtract(ones, padded[:, 0] @ test_t, out=cost[0])
    path[0] = cost[0]
    best = np.full((k, m), np.inf, np.float32)    # column 0 stays inf: no step reaches it from row i - 1
    for i in range(1, n_max):
        _check_time()
        act = int(active[i])
        np.subtract(ones, padded[:act, i] @ test_t, out=cost[i, :act])
        b, prev = best[:act], path[i - 1, :act]
        if i >= 2:
            np.add(path[i - 2, :act, :-1], cost[i - 1, :act, 1:], out=b[:, 1:])   # (2,1): row i - 2, then (i - 1, j)
        np.minimum(prev[:, :-1], b[:, 1:], out=b[:, 1:])                          # (1,1)
        np.minimum(b[:, 2:], prev[:, :-2], out=b[:, 2:])                          # (1,2)
        np.add(b, cost[i, :act], out=path[i, :act])
    score = np.full((k, m), np.inf, np.float32)
    for i, rows in done.items():
        for r in rows:
            score[order[r]] = path[i, r] / int(lengths[r])
    row_of = [0] * k
    for r, o in enumerate(order):
        row_of[int(o)] = r
    return score, cost, path, row_of


_INF = np.float32(np.inf)


def _backtrack(cost: np.ndarray, path: np.ndarray, r: int, n: int, j: int) -> tuple[int, float]:
    """(start column, mean cost of the worse template half) of the best path of _paths' row r (a template of n
    frames) ending at column j: its steps chosen again as _subsequence_many chose them, ties alike."""
    h = max(1, n // 2)
    total, i, half = path[n - 1, r, j], n - 1, path[0, r, j]
    while i > 0:
        a = path[i - 1, r, j - 1] if j >= 1 else _INF
        b = path[i - 1, r, j - 2] if j >= 2 else _INF
        c = path[i - 2, r, j - 1] + cost[i - 1, r, j] if i >= 2 and j >= 1 else _INF
        back, di, dj = (b, 1, 2) if b < a else (a, 1, 1)
        if c < back:
            back, di, dj = c, 2, 1
        if i == h:                        # the cost through row h - 1 (for (2,1), through its cell (h - 1, j))
            half = back
        elif di == 2 and i == h + 1:      # (2,1) from row h - 1, over row h
            half = path[h - 1, r, j - 1]
        i, j = i - di, j - dj
    if n < 2:
        return j, float(total)
    return j, float(max(half / h, (total - half) / (n - h)))


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


def _groups(templates: list[np.ndarray], columns: int, normalised: bool = False):
    """Templates in groups that keep each DP pass within MAX_CELLS, as unit rows (normalised: they are)."""
    size = max(1, MAX_CELLS // max(columns, 1))
    for g in range(0, len(templates), size):
        yield list(templates[g:g + size]) if normalised else [unit(t) for t in templates[g:g + size]]


def match_templates(templates: list[np.ndarray], clips: list[np.ndarray]) -> list[list[Match]]:
    """Best subsequence match of every template in every clip, with its path: result[template][clip]."""
    if not templates:
        return []
    big, blocked, offsets = _concatenate(clips, templates[0].shape[1])
    out: list[list[Match]] = []
    for chunk in _groups(templates, len(big)):
        if len(big):
            score, where = _ends(chunk, big, blocked)
        for r in range(len(chunk)):
            row = []
            for off, c in zip(offsets, clips):
                seg = score[r, off: off + len(c)] if len(big) else np.zeros(0)
                if len(seg) == 0 or not np.isfinite(seg).any():
                    row.append(Match(float("inf"), 0, max(0, len(c) - 1), float("inf")))
                    continue
                j = int(np.argmin(seg))
                first, worse = where(r, off + j)
                row.append(Match(float(seg[j]), first - off, j, worse))
            out.append(row)
    return out


def _ends(templates: list[np.ndarray], test: np.ndarray, blocked: np.ndarray
          ) -> tuple[np.ndarray, Callable[[int, int], tuple[int, float]]]:
    """(K, m) mean path costs, and where(template, end column) -> (start column, worse-half mean): by _paths and
    _backtrack while the rows fit BACKTRACK_CELLS, else by _subsequence_many (the same numbers either way)."""
    if max(len(t) for t in templates) * len(templates) * len(test) <= BACKTRACK_CELLS:
        score, cost, path, row_of = _paths(templates, test, blocked)
        return score, lambda t, j: _backtrack(cost, path, row_of[t], len(templates[t]), j)
    score, start, worst = _subsequence_many(templates, test, blocked)
    return score, lambda t, j: (int(start[t, j]), float(worst[t, j]))


def template_distances(templates: list[np.ndarray], clips: list[np.ndarray], normalised: bool = False) -> np.ndarray:
    """(n_templates, n_clips) best-match distances only (inf: no fit): the cheap pass for impostor templates.

    The same DP as match_templates without the start and half bookkeeping, about 3x fewer array operations.
    normalised: the templates are unit rows already (unit() of them again might move a last bit).
    """
    out = np.full((len(templates), len(clips)), np.inf)
    if not templates or not clips:
        return out
    big, blocked, offsets = _concatenate(clips, templates[0].shape[1])
    ends = [off + len(c) for off, c in zip(offsets, clips)]
    g0 = 0
    for chunk in _groups(templates, len(big), normalised):
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
    n_max, active, done = _schedule(lengths)
    ones, test_t = _ones(blocked), np.ascontiguousarray(test.T)
    score = np.full((k, m), np.inf, np.float32)
    prev = ones - padded[:, 0] @ test_t
    prev2 = np.full_like(prev, np.inf)
    c_prev = prev
    best = np.full((k, m), np.inf, np.float32)    # column 0 stays inf: no step reaches it from row i - 1
    for i in range(n_max):
        _check_time()
        act = int(active[i])
        if i:
            c_i = ones - padded[:act, i] @ test_t
            bv = best[:act]
            np.add(prev2[:act, :-1], c_prev[:act, 1:], out=bv[:, 1:])
            np.minimum(prev[:act, :-1], bv[:, 1:], out=bv[:, 1:])
            np.minimum(bv[:, 2:], prev[:act, :-2], out=bv[:, 2:])
            prev2, c_prev = prev[:act], c_i
            prev = c_i + bv
        for r in done.get(i, ()):
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
        pair = costs[:, 1:-1] + self.no_pair                # r - 1 in this column, where r - 2 may lead to it
        n = len(cols)
        # Accumulated costs of the two columns before, then of these: row k + 2 is column k, made from rows
        # k + 1 and k, and the ends of the templates are read once after the loop (numpy's per-call overhead,
        # not arithmetic, is what these short arrays cost). d1 and d2 are never written: they may be the committed state.
        acc = np.empty((n + 2, len(d1)), np.float32)
        acc[0], acc[1] = d2, d1
        best, tmp = np.empty_like(d1), np.empty(len(d1) - 2, np.float32)
        best1, best2 = best[1:], best[2:]
        starts = np.flatnonzero(self.first)
        for k in range(n):
            last, before = acc[k + 1], acc[k]
            np.minimum(last[:-1], before[:-1], out=best1)   # row r - 1, one or two columns back
            np.add(last[:-2], pair[k], out=tmp)             # r - 2 back, then r - 1 here
            np.minimum(best2, tmp, out=best2)
            best[starts] = 0.0                              # a match may start at any column
            np.add(costs[k], best, out=acc[k + 2])
        return (acc[2:, self.ends] / self.lengths).astype(np.float32), acc[n + 1], acc[n]

    def step(self, columns: np.ndarray) -> np.ndarray:
        """Commit test columns; returns (n_columns, n_templates) mean path costs of each template's best
        match ending at each column (inf: none fits yet)."""
        dist, self.d1, self.d2 = self._run(columns, self.d1, self.d2)
        self.column += len(dist)
        return dist

    def peek(self, columns: np.ndarray) -> np.ndarray:
        """step() for columns after the committed ones, leaving the committed state as it was."""
        return self._run(columns, self.d1, self.d2)[0]
