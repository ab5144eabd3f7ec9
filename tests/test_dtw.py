import numpy as np
from synth import utterance

from kws.scoring import dtw
from kws.config import DEFAULT
from kws.scoring.detect import prepare


def frames(words, seed=0, pad=None, **kw):
    return prepare(utterance(words, seed=seed, **kw), DEFAULT, pad_ms=pad).frames


def test_embedded_phrase_is_found_and_unrelated_speech_is_not():
    template = frames(["alpha", "delta"], seed=1, pad=30)
    clips = [frames(["bravo", "alpha", "delta", "omega"], seed=2), frames(["omega", "bravo"], seed=3),
             frames(["alpha"], seed=4), frames(["alpha", "delta"], seed=5)]
    m = dtw.best_matches(template, clips)
    assert m[0].distance < 0.2 and m[3].distance < 0.2
    assert m[1].distance > 2 * m[0].distance and m[2].distance > 2 * m[0].distance
    # the match sits after 'bravo': it starts past the first third of the clip
    assert len(clips[0]) * 0.25 < m[0].start < m[0].end < len(clips[0])


def test_batch_equals_single_and_clips_do_not_leak():
    t = frames(["alpha", "delta"], seed=1, pad=30)
    clips = [frames(["bravo"], seed=2), frames(["alpha", "delta"], seed=3), frames(["omega"], seed=4)]
    together = dtw.best_matches(t, clips)
    alone = [dtw.best_matches(t, [c])[0] for c in clips]
    assert [round(m.distance, 5) for m in together] == [round(m.distance, 5) for m in alone]


def test_too_short_clip_cannot_match():
    t = frames(["alpha", "delta"], seed=1, pad=30)
    m = dtw.best_matches(t, [t[: len(t) // 3]])[0]
    assert m.distance == float("inf")


def test_align_path_is_monotone_and_complete():
    a, b = frames(["alpha"], seed=1, pad=30), frames(["alpha"], seed=2, pad=30)
    path = dtw.align(a, b)
    assert path[0] == (0, 0) and path[-1] == (len(a) - 1, len(b) - 1)
    assert [i for i, _ in path] == list(range(len(a)))
    assert all(j2 >= j1 for (_, j1), (_, j2) in zip(path, path[1:]))


def test_average_template_is_close_to_all():
    ts = [frames(["alpha", "delta"], seed=s, pad=30) for s in range(4)]
    avg = dtw.average_template(ts)
    assert np.mean([dtw.align_distance(avg, t) for t in ts]) < np.mean(
        [dtw.align_distance(ts[0], t) for t in ts[1:]])


def test_half_of_a_phrase_has_a_bad_half():
    template = frames(["alpha", "delta"], seed=1, pad=30)
    full, half = dtw.best_matches(template, [frames(["alpha", "delta"], seed=6), frames(["alpha", "omega"], seed=7)])
    assert full.worst_half < 1.5 * full.distance + 0.05
    assert half.worst_half - half.distance > 3 * (full.worst_half - full.distance)
    assert half.worst_half >= half.distance


def test_online_match_equals_the_batch_distances_column_by_column():
    """OnlineMatch, fed a few columns at a time, knows at every column what the batch pass would find
    in the clip ending there; peek() leaves its state as it was."""
    templates = [frames(["alpha", "delta"], seed=s, pad=30) for s in (1, 2)] + [frames(["omega"], seed=3, pad=30)]
    test = np.concatenate([frames(["bravo"], seed=4), frames(["alpha", "delta"], seed=5), frames(["omega"], seed=6)])
    online, got, i = dtw.OnlineMatch(templates), [], 0
    for n in [1, 7, 3, 30, 2, 100, 1000]:
        if i < len(test):
            before = online.peek(test[i:i + n])
            got.append(online.step(test[i:i + n]))
            assert np.array_equal(before, got[-1])
            i += n
    dist = np.concatenate(got)
    assert dist.shape == (len(test), len(templates)) and online.column == len(test)
    for end in (len(test) // 3, 2 * len(test) // 3, len(test)):
        batch = dtw.template_distances(templates, [test[:end]])[:, 0]
        assert np.allclose(dist[:end].min(axis=0), batch, rtol=1e-4, atol=1e-5)
    # the phrase's best match ends inside it, the word's inside the word
    first, second = len(frames(["bravo"], seed=4)), len(frames(["alpha", "delta"], seed=5))
    assert first < int(np.argmin(dist[:, 0])) < first + second + 3 <= int(np.argmin(dist[:, 2])) + 3


def _reference(t: np.ndarray, x: np.ndarray, blocked: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """_subsequence_many for one template, cell by cell: (mean cost, start column, worse-half mean) per end."""
    n, m, h = len(t), len(x), max(1, len(t) // 2)
    cost = np.where(blocked[None, :], np.inf, 1.0 - dtw.unit(t) @ dtw.unit(x).T).astype(np.float32)
    inf = (np.float32(np.inf), 0, np.float32(np.inf))
    P = [[inf] * m for _ in range(n)]      # (path cost, start, first-half cost)
    for j in range(m):
        P[0][j] = (cost[0, j], j, cost[0, j])
    for i in range(1, n):
        for j in range(m):
            best = P[i - 1][j - 1] if j >= 1 else inf
            if j >= 2 and P[i - 1][j - 2][0] < best[0]:
                best = P[i - 1][j - 2]
            if i >= 2 and j >= 1 and P[i - 2][j - 1][0] + cost[i - 1, j] < best[0]:
                p = P[i - 2][j - 1]
                best = (p[0] + cost[i - 1, j], p[1], p[2])     # (first-half cost: reset below while i <= h)
            half = best[0] if i == h else best[2]
            total = best[0] + cost[i, j]
            P[i][j] = (total, best[1], total if i < h else half)
    path = np.array([c[0] for c in P[-1]], np.float32)
    half = np.array([c[2] for c in P[-1]], np.float32)
    with np.errstate(invalid="ignore"):
        worst = path if n < 2 else np.maximum(half / h, (path - half) / (n - h))
    return path / n, np.array([c[1] for c in P[-1]]), np.where(np.isfinite(path), worst, np.inf)


def test_many_templates_of_many_lengths_match_as_each_alone():
    """The batched pass (templates longest first, leaving as they end, halves as slices) against a plain
    cell-by-cell DTW of each template on its own: costs, starts and worse halves."""
    rng = np.random.default_rng(3)
    templates = [rng.standard_normal((n, 6)).astype(np.float32) for n in (9, 1, 6, 2, 5, 9, 3)]
    x = rng.standard_normal((24, 6)).astype(np.float32)
    blocked = np.zeros(24, bool)
    blocked[11:13] = True
    score, start, worst = dtw._subsequence_many([dtw.unit(t) for t in templates], dtw.unit(x), blocked)
    for k, t in enumerate(templates):
        ref = _reference(t, x, blocked)
        fin = np.isfinite(ref[0])
        assert np.array_equal(np.isfinite(score[k]), fin), k
        assert np.allclose(score[k][fin], ref[0][fin], atol=1e-5) and np.array_equal(start[k][fin], ref[1][fin]), k
        assert np.allclose(worst[k][fin], ref[2][fin], atol=1e-5), k


def test_backtracking_the_kept_rows_gives_the_carried_paths_bit_for_bit():
    """_paths + _backtrack (every row kept, the chosen ends traced back) against _subsequence_many (start and
    half carried along every cell): the same costs, starts and worse halves at every end, ties and blocked
    columns included, and match_templates the same Matches whichever of the two it runs."""
    rng = np.random.default_rng(4)
    for case in range(40):
        dim = int(rng.choice([6, 19]))
        templates = [dtw.unit(rng.standard_normal((int(n), dim)).astype(np.float32)) for n in rng.integers(1, 30, 4)]
        x = dtw.unit(rng.standard_normal((int(rng.integers(1, 60)), dim)).astype(np.float32))
        if case % 3 == 0:    # repeated frames: equal costs, so ties between steps
            x, templates = np.repeat(x, 2, axis=0), [np.repeat(t, 2, axis=0) for t in templates]
        blocked = rng.random(len(x)) < 0.1
        score, start, worst = dtw._subsequence_many(templates, x, blocked)
        score2, cost, path, row_of = dtw._paths(templates, x, blocked)
        assert np.array_equal(score, score2), case
        for t in range(len(templates)):
            for j in np.flatnonzero(np.isfinite(score[t])):
                assert dtw._backtrack(cost, path, row_of[t], len(templates[t]), int(j)) == (start[t, j], worst[t, j])
    clips = [rng.standard_normal((int(n), 6)).astype(np.float32) for n in (15, 1, 40)]
    templates = [rng.standard_normal((int(n), 6)).astype(np.float32) for n in (12, 3, 7)]
    fast = dtw.match_templates(templates, clips)
    dtw.BACKTRACK_CELLS, cells = 0, dtw.BACKTRACK_CELLS
    try:
        assert dtw.match_templates(templates, clips) == fast
    finally:
        dtw.BACKTRACK_CELLS = cells


def test_templates_given_as_unit_rows_are_not_normalised_again():
    """template_distances(normalised=True) of unit rows (a cohort's, made once; reversed takes as unit(t)[::-1])
    gives the distances of the raw templates bit for bit."""
    rng = np.random.default_rng(5)
    templates = [rng.standard_normal((int(n), 6)).astype(np.float32) * 3 for n in (7, 12, 4)]
    clips = [rng.standard_normal((int(n), 6)).astype(np.float32) for n in (20, 9)]
    raw = dtw.template_distances(templates + [t[::-1] for t in templates], clips)
    ready = [dtw.unit(t) for t in templates] + [dtw.unit(t)[::-1] for t in templates]
    assert np.array_equal(dtw.template_distances(ready, clips, normalised=True), raw)
    assert not np.array_equal(dtw.template_distances(templates, clips, normalised=True), raw)   # they must be unit rows
