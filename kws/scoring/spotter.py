"""Where a phrase may just have been said in a stream: its templates matched column by column.

Each enrollment take is matched by subsequence DTW against the stream as it arrives (dtw.OnlineMatch),
so the best match ending at every new frame is known when that frame comes; no speech region has to
close first and no window has to hold the whole phrase. Where the match is good enough (its distance,
against the take's impostor statistics, above StreamConfig.spot_min_z) and no better one follows within
spot_confirm_s, the match is a Candidate, which detect's clip scoring then judges on its own span. Weaker
matches ending within a template's length after it are its path running on into the next words: dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kws.config import StreamConfig
from kws.scoring.dtw import OnlineMatch, best_matches
from kws.scoring.scores import top_k_mean


@dataclass(frozen=True)
class Candidate:
    phrase: str
    start: int        # first matched column of the stream
    end: int          # last matched column
    score: float      # the match's impostor-normalised distance (higher: closer), top-k over the takes


@dataclass(frozen=True)
class _Track:
    best: Candidate | None = None
    quiet_until: int = -1      # columns up to here belong to an emitted candidate
    # ... and up to here, matches scoring below it are that candidate's path running on into what follows
    shadow_until: int = -1
    shadow_score: float = -np.inf


class Spotter:
    """One phrase's templates against a stream's keyword columns: push columns, get Candidates."""

    def __init__(self, phrase: str, templates: list[np.ndarray], cohort_mean: np.ndarray, cohort_std: np.ndarray,
                 columns_per_s: float, cfg: StreamConfig = StreamConfig(), k: int = 3):
        self.phrase, self.k, self.templates = phrase, k, templates
        self.match = OnlineMatch(templates)
        self.mu = np.asarray(cohort_mean[:len(templates)], np.float64)
        self.sd = np.asarray(cohort_std[:len(templates)], np.float64) + 1e-6
        self.min_z = cfg.spot_min_z
        self.confirm = max(1, round(cfg.spot_confirm_s * columns_per_s))
        self.gap = max(self.confirm, round(cfg.spot_min_gap_s * columns_per_s))
        self.track = _Track()
        self.longest = int(max(len(t) for t in templates))
        # The newest committed columns, enough for the longest match (a template at half speed) and a hop.
        self.recent = np.zeros((0, templates[0].shape[1]), np.float32)
        self.keep = 2 * self.longest + 2 * self.gap + 64

    def scores(self, dist: np.ndarray) -> np.ndarray:
        """Per column: the top-k mean over the takes of (impostor mean - distance) / impostor std."""
        z = (self.mu - np.where(np.isfinite(dist), dist, 2.0)) / self.sd
        return top_k_mean(z.T, min(self.k, z.shape[1]), largest=True) if len(z) else np.zeros(0)

    def _follow(self, track: _Track, first: int, s: np.ndarray, dist: np.ndarray) -> tuple[_Track, list[Candidate]]:
        """The candidate rule over columns first, first+1, ...: the best match above min_z, emitted once
        confirm columns have passed without a better one; the gap after an emitted one stays quiet."""
        out = []
        for i in range(len(s)):
            j = first + i
            if j <= track.quiet_until or (j <= track.shadow_until and s[i] < track.shadow_score):
                continue
            if s[i] >= self.min_z and (track.best is None or s[i] > track.best.score):
                take = int(np.argmin(np.where(np.isfinite(dist[i]), dist[i], np.inf)))
                track = replace(track, best=Candidate(self.phrase, take, j, float(s[i])))   # start: the take, for now
            if track.best is not None and j - track.best.end >= self.confirm:
                out.append(track.best)
                track = _Track(None, track.best.end + self.gap, track.best.end + self.longest, track.best.score)
        return track, out

    def _located(self, c: Candidate, columns: np.ndarray, first: int) -> Candidate:
        """The candidate with its start: its best take matched again on the columns up to its end."""
        t = self.templates[c.start]
        a = max(first, c.end + 1 - 2 * len(t) - 2)
        m = best_matches(t, [columns[a - first:c.end + 1 - first]])[0]
        return replace(c, start=a + m.start)

    def push(self, final: np.ndarray, provisional: np.ndarray) -> list[Candidate]:
        """Candidates confirmed by these columns: final ones (committed) and the provisional ones after them
        (a candidate they confirm is emitted now; the columns it covers stay quiet once final)."""
        first = self.match.column
        dist = self.match.step(final)
        self.recent = np.concatenate([self.recent, final])[-self.keep:]
        self.track, out = self._follow(self.track, first, self.scores(dist), dist)
        if len(provisional):
            dist_p = self.match.peek(provisional)
            track, more = self._follow(self.track, first + len(final), self.scores(dist_p), dist_p)
            if more:
                out += more
                self.track = replace(track, best=None)
        if not out:
            return out
        view = np.concatenate([self.recent, provisional])
        view_first = first + len(final) - len(self.recent)
        return [self._located(c, view, view_first) for c in out]
