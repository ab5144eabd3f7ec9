"""The registry of score columns: each column one named function whose docstring gives its formula.

detect.py computes the raw material (DTW distances to the takes, the average, the cohort and the
reversed takes; voiceprint cosines; clip conditions) into an input record per group, then every
column of that group is its function of the record. The fit scripts read the column lists from here:

    python -m kws.scoring.scores --columns keyword      # kw_z,kw_t,...: the fitted keyword columns, comma-joined

Notation: d = distances of the takes to a clip (the average's: d_avg), topk = mean of the k smallest,
C = mean over the takes of their cohort distance (profile.kw_cohort_mean), E = the takes' mean
leave-one-out distance (kw_enroll_mean), span = max(C - E, 1e-3); mu_t, sd_t = mean and std of the
cohort templates' distances to the same clip.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

import numpy as np

from kws.config import FRONTENDS
from kws.signal.conditions import SILENCE_DB, Conditions

GROUPS = ("keyword", "second", "matcher", "word", "speaker", "condition")
SNR_RANGE_DB = (-5.0, 40.0)   # beyond these an SNR estimate says nothing more (40: digital silence around speech)


@dataclass(frozen=True)
class Column:
    name: str
    group: str                 # one of GROUPS
    fn: Callable[..., np.ndarray]
    fitted: bool = True        # offered to the calibration fits (kw_raw is kept for diagnostics only)
    switch: str = ""           # the DetectConfig switch whose calibrations alone fit it (noise_match)
    # Also fitted as seen against the test folder (<name>@set and @top, the *_set calibrations); not
    # a rare indicator (cond_clipped), whose spread over a folder is mostly nil.
    per_set: bool = True

    @property
    def formula(self) -> str:
        return " ".join((self.fn.__doc__ or "").split())


COLUMNS: dict[str, Column] = {}


def column(group: str, fitted: bool = True, switch: str = "", per_set: bool = True) -> Callable:
    def register(fn: Callable) -> Callable:
        assert group in GROUPS and fn.__name__ not in COLUMNS
        COLUMNS[fn.__name__] = Column(fn.__name__, group, fn, fitted, switch, per_set)
        return fn
    return register


def names(group: str | None = None, fitted_only: bool = False, switch: str | None = None,
          per_set_only: bool = False) -> tuple[str, ...]:
    """Column names in registry order, of one group or all (switch: only the columns of that switch;
    "": only those of none; per_set_only: only those also fitted as <name>@set)."""
    return tuple(c.name for c in COLUMNS.values()
                 if (group is None or c.group == group) and (c.fitted or not fitted_only)
                 and (switch is None or c.switch == switch) and (c.per_set or not per_set_only))


def top_k_mean(values: np.ndarray, k: int, axis: int = 0, largest: bool = True) -> np.ndarray:
    """Mean of the k largest (or smallest) values along an axis."""
    k = max(1, min(k, values.shape[axis]))
    s = np.sort(values, axis=axis)
    s = np.flip(s, axis=axis) if largest else s
    return np.take(s, np.arange(k), axis=axis).mean(axis=axis)


@dataclass(frozen=True)
class KeywordInputs:
    """What detect.keyword_scores measured, per clip (arrays over clips unless said)."""
    raw: np.ndarray            # topk(d)
    z_takes: np.ndarray        # (n_takes, n_clips): (cohort mean - d) / cohort std, per take
    d_avg: np.ndarray          # distance of the averaged template
    cohort_avg: float          # the averaged template's cohort mean distance
    t_mu: np.ndarray
    t_sd: np.ndarray           # + 1e-6
    coh: float                 # C
    span: float                # max(C - E, 1e-3)
    enroll_mean: float         # E
    reversed_topk: np.ndarray  # topk of the reversed takes' distances
    halves_topk: np.ndarray    # topk of each take's worse-half distance
    warp: np.ndarray           # |log(match length / template length)| of the closest take
    nm_raw: np.ndarray         # topk of the noise-matched takes' distances (raw where not noise-matched)
    k: int                     # DetectConfig.top_k


@column("keyword", fitted=False)
def kw_raw(x: KeywordInputs) -> np.ndarray:
    """raw = topk(d): the mean of the k smallest take distances (lower is closer)."""
    return x.raw


@column("keyword")
def kw_z(x: KeywordInputs) -> np.ndarray:
    """topk-largest over takes of (cohort_mean_take - d_take) / cohort_std_take: z-norm against impostor speech."""
    return top_k_mean(x.z_takes, x.k)


@column("keyword")
def kw_t(x: KeywordInputs) -> np.ndarray:
    """(mu_t - raw) / sd_t: t-norm against cohort templates matched in the same clip."""
    return (x.t_mu - x.raw) / x.t_sd


@column("keyword")
def kw_rel(x: KeywordInputs) -> np.ndarray:
    """(C - raw) / span: 0 at impostor distance, 1 at the takes' mutual distance."""
    return (x.coh - x.raw) / x.span


@column("keyword")
def kw_avg_rel(x: KeywordInputs) -> np.ndarray:
    """(C_avg - d_avg) / span: kw_rel of the averaged template, on its own cohort distance."""
    return (x.cohort_avg - x.d_avg) / x.span


@column("keyword")
def kw_trel(x: KeywordInputs) -> np.ndarray:
    """(mu_t - raw) / max(mu_t - E, 1e-3): kw_rel on the clip's own cohort scale."""
    return (x.t_mu - x.raw) / np.maximum(x.t_mu - x.enroll_mean, 1e-3)


@column("keyword")
def kw_rev(x: KeywordInputs) -> np.ndarray:
    """topk(d of the takes played backwards) - raw: same voice, channel and length, not the same word."""
    return x.reversed_topk - x.raw


@column("keyword")
def kw_warp(x: KeywordInputs) -> np.ndarray:
    """|log(match frames / template frames)| of the closest take: genuine matches stay near 0."""
    return x.warp


@column("keyword")
def kw_half(x: KeywordInputs) -> np.ndarray:
    """topk(worse-half distance) - raw: how much worse the worse half of the phrase matches."""
    return x.halves_topk - x.raw


@column("keyword", switch="noise_match")
def kw_nm_rel(x: KeywordInputs) -> np.ndarray:
    """(C - nm_raw) / span: kw_rel of the takes mixed with the clip's noise at its SNR."""
    return (x.coh - x.nm_raw) / x.span


@column("keyword", switch="noise_match")
def kw_nm_t(x: KeywordInputs) -> np.ndarray:
    """(mu_t - nm_raw) / sd_t: kw_t of the noise-matched takes."""
    return (x.t_mu - x.nm_raw) / x.t_sd


@column("keyword", switch="noise_match")
def kw_nm_gain(x: KeywordInputs) -> np.ndarray:
    """raw - nm_raw: how much closer the noise-matched takes are (0 where the clip is clean)."""
    return x.raw - x.nm_raw


@column("matcher")
def kw_cnn(logits: np.ndarray) -> np.ndarray:
    """Mean logit of the learned matcher (kws/matcher.py) over the clip's closest takes' DTW matrices."""
    return logits


@dataclass(frozen=True)
class WordInputs:
    cos: np.ndarray            # (n_takes, n_clips) word-embedding cosine of each take to each matched segment
    enroll_mean: float         # the takes' mean leave-one-out cosine (top-k of the others)
    k: int                     # DetectConfig.top_k


@column("word")
def ewn_cos(x: WordInputs) -> np.ndarray:
    """topk-largest over takes of the word-embedding cosine (kws/nn/efficientword.py) to the matched segment."""
    return top_k_mean(x.cos, x.k)


@column("word")
def ewn_gap(x: WordInputs) -> np.ndarray:
    """ewn_cos - E_w, E_w the takes' leave-one-out ewn_cos: 0 where a clip is as close as the takes to each other."""
    return top_k_mean(x.cos, x.k) - x.enroll_mean


@dataclass(frozen=True)
class SpeakerInputs:
    seg: np.ndarray            # cosine of the matched segment's embedding with the voiceprint
    whole: np.ndarray          # cosine of the whole clip's embedding
    mu: float                  # the profile's mean cosine to cohort speakers
    sd: float                  # ... its std + 1e-6
    cohort_cos: np.ndarray     # (n_clips, n_cohort) cosines of each segment to the cohort speakers
    enroll_mean: float         # leave-one-out cosine of the takes


@column("speaker")
def spk_seg_z(x: SpeakerInputs) -> np.ndarray:
    """(seg - mu) / sd: the matched segment's voiceprint cosine, z-normed by the profile's cohort."""
    return (x.seg - x.mu) / x.sd


@column("speaker")
def spk_all_z(x: SpeakerInputs) -> np.ndarray:
    """(whole - mu) / sd: spk_seg_z of the whole clip."""
    return (x.whole - x.mu) / x.sd


@column("speaker")
def spk_seg_t(x: SpeakerInputs) -> np.ndarray:
    """(seg - mean(cohort_cos)) / (std(cohort_cos) + 1e-6): t-norm of the segment against cohort speakers."""
    return (x.seg - x.cohort_cos.mean(axis=1)) / (x.cohort_cos.std(axis=1) + 1e-6)


@column("speaker")
def spk_rel(x: SpeakerInputs) -> np.ndarray:
    """(seg - mu) / max(enroll - mu, 1e-3): 0 at impostors, 1 at the takes' own cosine."""
    return (x.seg - x.mu) / max(x.enroll_mean - x.mu, 1e-3)


@column("condition")
def cond_snr(c: list[Conditions]) -> np.ndarray:
    """The clip's SNR estimate (dB), clipped to SNR_RANGE_DB; unknown (no speech): the top of the range."""
    snr = np.array([x.snr_db for x in c], np.float64)
    return np.clip(np.nan_to_num(snr, nan=SNR_RANGE_DB[1]), *SNR_RANGE_DB)


@column("condition")
def cond_noise(c: list[Conditions]) -> np.ndarray:
    """The clip's noise level (dBFS), floored at conditions.SILENCE_DB."""
    return np.array([max(x.noise_dbfs, SILENCE_DB) if np.isfinite(x.noise_dbfs) else SILENCE_DB for x in c])


@column("condition")
def cond_speech_s(c: list[Conditions]) -> np.ndarray:
    """Seconds of VAD speech in the clip."""
    return np.array([x.speech_s for x in c])


@column("condition", per_set=False)
def cond_clipped(c: list[Conditions]) -> np.ndarray:
    """Fraction of the clip's samples at full scale."""
    return np.array([x.clipped_fraction for x in c])


def second_name(frontend: str, name: str) -> str:
    """The column of the second keyword front end (DetectConfig.second_frontend) for a keyword column."""
    return f"{frontend}_{name}"


# The second keyword front end: the keyword columns again, of its own distances, as <frontend>_kw_*;
# fitted only by the calibrations of that switch (their formulas: the keyword column's, in its frames).
for _c in [c for c in COLUMNS.values() if c.group == "keyword" and not c.switch]:
    for _fe in FRONTENDS:
        COLUMNS[second_name(_fe, _c.name)] = Column(second_name(_fe, _c.name), "second", _c.fn, _c.fitted,
                                                    "second_frontend", _c.per_set)


def group_scores(group: str, inputs: object) -> dict[str, np.ndarray]:
    """Every column of a group from its input record."""
    return {c.name: c.fn(inputs) for c in COLUMNS.values() if c.group == group}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m kws.scoring.scores", description="Print the registered score columns.")
    ap.add_argument("--columns", choices=GROUPS, help="print one group's fitted columns, comma-joined")
    ap.add_argument("--switch", default="", help="with --columns: the columns of this DetectConfig switch "
                    "(noise_match) instead of those every configuration fits")
    ap.add_argument("--per-set", action="store_true", help="with --columns: only those also fitted as <name>@set")
    a = ap.parse_args(argv)
    if a.columns:
        print(",".join(names(a.columns, fitted_only=True, switch=a.switch, per_set_only=a.per_set)))
        return
    for c in COLUMNS.values():
        print(f"{c.name:<14} {c.group:<10} {c.formula}")


if __name__ == "__main__":
    main()
