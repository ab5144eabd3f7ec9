"""Scoring test audio against a SpeakerProfile: keyword (DTW) and speaker (cosine) scores, normalised.

Audio -> Prepared (speech crop + keyword frames) -> raw distances/cosines -> per-speaker
normalised scores (named columns) -> calibrate.Calibration turns those into 0/1.
"""
from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kws.signal import conditions
from kws.scoring import dtw
from kws.scoring import scores
from kws.scoring.cohort import Cohort, load_cohort
from kws.config import NO_MATCH_DISTANCE, SAMPLE_RATE, Config, FeatureConfig
from kws.nn import efficientword   # light: onnxruntime and the model load on the first embedding
from kws.nn.encoder import (frontend_fingerprint, ge2e_sha, keyword_frames, load_multitask, load_trunk_projection,
                            segment_and_clip_embeddings, speaker_embeddings)
from kws.errors import ProfileError
from kws.signal.features import frames_per_second, mel_frames
from kws.scoring.matcher import TOP_TEMPLATES, match_matrix, matcher_for, matcher_logits
from kws.scoring.profile import SecondKeywords, SpeakerProfile
from kws.stages import stage
from kws.scoring.templates import PerTemplate, Templates
from kws.signal.conditions import Conditions
from kws.scoring.scores import top_k_mean
from kws.signal.vad import frame_decisions, frame_samples, segments_of
from kws.scoring.voiceprint import cosine, leave_one_out, unit, voiceprint

CONDITION_NAMES = scores.names("condition")
SCORE_NAMES = scores.names()   # every column, in the registry's order (kws/scoring/scores.py)


@dataclass(frozen=True)
class Prepared:
    audio: np.ndarray      # the samples framed: cropped to speech unless prepare(crop=False)
    frames: np.ndarray     # keyword frames of the crop
    has_speech: bool
    conditions: Conditions | None = None   # of the whole clip; None: measured on the crop when scored
    noise: np.ndarray | None = None        # the clip's non-speech samples (None: not known, as in streams)


def prepare(y: np.ndarray, cfg: Config, pad_ms: int | None = None, crop: bool = True) -> Prepared:
    """Crop to the speech span (first onset to last offset, padded; crop=False keeps the whole clip), compute
    keyword frames, and measure the clip's conditions (noise, SNR) on the whole clip, pauses included."""
    with stage("vad"):
        speech = frame_decisions(y, cfg.vad)
        segs = segments_of(speech, cfg.vad, len(y), pad_ms)
        cond = conditions.measure(y, cfg.vad, speech)
        # the clip's own noise, for noise-matched templates only (it costs a copy of up to 2 s)
        noise = (non_speech(y, segs if pad_ms is None else segments_of(speech, cfg.vad, len(y)), cfg)
                 if cfg.detect.noise_match else None)
    kept = y[segs[0][0]:segs[-1][1]] if segs and crop else y
    with stage("features"):
        frames = keyword_frames(kept, cfg.features)
    return Prepared(kept, frames, bool(segs), cond, noise)


def non_speech(y: np.ndarray, segs: list[tuple[int, int]], cfg: Config) -> np.ndarray:
    """The samples outside the (padded) speech segments, at most noise_match_max_s of them. Where there are
    too few (noise loud enough for the VAD to call it all speech), the quietest fifth of the frames."""
    keep = np.ones(len(y), bool)
    for a, b in segs:
        keep[a:b] = False
    if keep.sum() < cfg.detect.noise_match_min_s * SAMPLE_RATE:
        n = frame_samples(cfg.vad)
        frames = y[: len(y) // n * n].reshape(-1, n)
        quiet = np.sort(np.argsort(frames.var(axis=1))[: max(1, len(frames) // 5)])
        return frames[quiet].reshape(-1)[: int(cfg.detect.noise_match_max_s * SAMPLE_RATE)]
    return y[keep][: int(cfg.detect.noise_match_max_s * SAMPLE_RATE)]


def noise_matched_distances(profile: SpeakerProfile, clips: list[Prepared], cfg: Config) -> np.ndarray:
    """(n_templates, n_clips) distances of each enrollment take, mixed with a noisy clip's own noise at the
    clip's SNR, to that clip; NaN for clips that are clean (DetectConfig.noise_match_max_snr_db) or whose
    noise is not known. Templates and clip then meet in the same conditions."""
    d = cfg.detect
    out = np.full((len(profile.templates), len(clips)), np.nan)
    if not d.noise_match or len(profile.template_audio) != len(profile.templates):
        return out
    levels = None
    for j, c in enumerate(clips):
        cond = c.conditions
        if c.noise is None or cond is None or not cond.snr_db < d.noise_match_max_snr_db \
                or len(c.noise) < d.noise_match_min_s * SAMPLE_RATE:
            continue
        # The clip's speech power without its noise, and its noise's mel spectrum
        p_speech = 10 ** (cond.level_dbfs / 10) - 10 ** (cond.noise_dbfs / 10)
        if p_speech <= 0:
            continue
        noise_mel = mel_frames(c.noise - c.noise.mean(), cfg.features).mean(axis=0)
        if levels is None:   # speech power of each take, measured as the clip's was
            levels = [10 ** (conditions.measure(a, cfg.vad).level_dbfs / 10) for a in profile.template_audio]
        # Each take gets the noise's expected power at the clip's own ratio of noise to speech.
        noisy = [keyword_frames(a, cfg.features, added=noise_mel * (lvl / p_speech))
                 for a, lvl in zip(profile.template_audio, levels)]
        out[:, j] = _capped(dtw.template_distances(noisy, [c.frames])[:, 0])
    return out


def condition_scores(clips: list[Prepared], cfg: Config) -> dict[str, np.ndarray]:
    """The clips' conditions as score columns (kws/scoring/scores.py), for a fusion that judges each clip in its conditions."""
    return scores.group_scores("condition", [c.conditions or conditions.measure(c.audio, cfg.vad) for c in clips])


def model_fingerprint(cfg: Config, cohort: Cohort) -> str:
    """Every weight that shapes a profile: the front end, the voiceprint model(s) and the cohort that
    normalises its scores. A profile enrolled under another is refused, not silently misjudged."""
    parts = [frontend_fingerprint(cfg.features), cfg.detect.voiceprint, cohort.sha]
    if cfg.detect.voiceprint in ("encoder", "both"):
        parts.append(load_multitask().sha)
    if cfg.detect.voiceprint in ("ge2e", "both"):
        parts.append(ge2e_sha())
    if cfg.detect.voiceprint == "trunk":
        parts.append(load_trunk_projection(load_multitask().sha).sha)
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def check_compatible(profile: SpeakerProfile, cfg: Config, where: str | Path, cohort: Cohort) -> None:
    """A profile's templates are frames of one front end, its statistics of one voiceprint model and
    cohort; matching them against others' is noise."""
    now = frontend_fingerprint(cfg.features)
    if profile.feature_fingerprint != now:
        raise ProfileError(f"{where}: enrolled with other feature settings or encoder weights "
                           f"({profile.feature_fingerprint}, now {now}); enroll again")
    if profile.voiceprint_kind != cfg.detect.voiceprint:
        raise ProfileError(f"{where}: enrolled with the {profile.voiceprint_kind} voiceprint, configured "
                           f"{cfg.detect.voiceprint}; enroll again")
    widths = (profile.templates[0].shape[1], len(profile.voiceprint))
    if widths != (cohort.templates[0].shape[1], cohort.speaker_embeddings.shape[1]):
        raise ProfileError(f"{where}: templates {widths[0]} wide and a voiceprint of {widths[1]}, the models give "
                           f"{cohort.templates[0].shape[1]} and {cohort.speaker_embeddings.shape[1]}; enroll again")
    if profile.model_fingerprint != (now := model_fingerprint(cfg, cohort)):
        raise ProfileError(f"{where}: enrolled with other voiceprint or cohort weights "
                           f"({profile.model_fingerprint or 'none'}, now {now}); enroll again")


NO_MATCH = NO_MATCH_DISTANCE


def _capped(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), x, NO_MATCH)


def keyword_matches(templates: list[np.ndarray], clips: list[np.ndarray]) -> tuple[np.ndarray, list[list[dtw.Match]]]:
    """(n_templates, n_clips) mean frame distances of each template's best match in each clip, capped at
    NO_MATCH, and the matches themselves (where they lie, how each half fits)."""
    matches = dtw.match_templates(templates, clips)
    dist = np.array([[m.distance for m in row] for row in matches], np.float64).reshape(len(templates), len(clips))
    return _capped(dist), matches


def keyword_distances(templates: list[np.ndarray], clips: list[np.ndarray], normalised: bool = False) -> np.ndarray:
    """keyword_matches without the matches: the cheap DTW pass (impostor templates, enrollment statistics);
    normalised: the templates are unit rows already."""
    return _capped(dtw.template_distances(templates, clips, normalised))


def keyword_scores(profile: SpeakerProfile, dist: np.ndarray, matches: list[list[dtw.Match]], cohort_dist: np.ndarray,
                   reversed_dist: np.ndarray, k: int, nm_dist: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The keyword columns (kws/scoring/scores.py gives each one's formula) from raw distances, rows in
    Templates.all() order: per speaker and per test clip normalised.

    nm_dist: the noise-matched takes' distances (noise_matched_distances; NaN columns: the plain raw)."""
    d, cm = PerTemplate.of(dist), PerTemplate.of(profile.kw_cohort_mean)
    raw = top_k_mean(d.takes, k, largest=False)
    z = PerTemplate.of((profile.kw_cohort_mean[:, None] - dist) / (profile.kw_cohort_std[:, None] + 1e-6))
    coh = float(np.mean(cm.takes))
    halves = np.array([[m.worst_half for m in row] for row in PerTemplate.of(matches).takes])
    warp = [abs(np.log((matches[t][i].end - matches[t][i].start + 1) / len(profile.templates[t])))
            for i, t in enumerate(np.argmin(d.takes, axis=0))]
    nm_raw = raw
    if nm_dist is not None:
        done = np.isfinite(nm_dist).all(axis=0)
        nm_raw = np.where(done, top_k_mean(np.where(done, nm_dist, NO_MATCH), k, largest=False), raw)
    return scores.group_scores("keyword", scores.KeywordInputs(
        raw=raw, z_takes=z.takes, d_avg=d.average, cohort_avg=cm.average,
        t_mu=cohort_dist.mean(axis=0), t_sd=cohort_dist.std(axis=0) + 1e-6, coh=coh,
        span=max(coh - profile.kw_enroll_mean, 1e-3), enroll_mean=profile.kw_enroll_mean,
        reversed_topk=top_k_mean(reversed_dist, k, largest=False),
        halves_topk=top_k_mean(_capped(halves), k, largest=False), warp=np.array(warp), nm_raw=nm_raw, k=k))


def keyword_statistics(templates: list[np.ndarray], cohort_frames: list[np.ndarray], k: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(DTW-averaged template, each template's mean and std distance to impostor speech, the takes' mean
    leave-one-out distance): the scale a speaker's keyword distances are judged on (rows: Templates.all())."""
    average = dtw.average_template(templates)
    # How far impostor speech sits from each template: the scale every test distance is judged on.
    coh_dist = keyword_distances(Templates(templates, average).all(), cohort_frames)
    # How close the genuine phrase sits: each take against the other takes' templates.
    self_dist = keyword_distances(templates, templates)
    np.fill_diagonal(self_dist, np.nan)
    loo = [top_k_mean(self_dist[~np.isnan(self_dist[:, i]), i], k, largest=False)
           for i in range(len(templates))] if len(templates) > 1 else [0.0]
    return average, coh_dist.mean(axis=1), coh_dist.std(axis=1), float(np.mean(loo))


# Second-front-end profiles, made once per profile object (a stream scores many batches with one).
_SECOND: dict[int, tuple[weakref.ref, FeatureConfig, SpeakerProfile]] = {}


def first_profile(profile: SpeakerProfile, cfg: Config) -> SpeakerProfile:
    """The profile with its keyword side in cfg's first front end and its speaker side in cfg's voiceprint: as
    enrolled, or made from the stored takes against that front end's cohort (the listener's front end and
    voiceprint may not be enrollment's: StreamConfig.frontend, StreamConfig.voiceprint)."""
    same_frames = profile.feature_fingerprint == frontend_fingerprint(cfg.features)
    if same_frames and profile.voiceprint_kind == cfg.detect.voiceprint:
        return profile
    if len(profile.template_audio) != len(profile.templates):
        raise ProfileError(f"this profile keeps no enrollment takes, which the {cfg.features.frontend} front end "
                           f"and the {cfg.detect.voiceprint} voiceprint need; enroll again")
    cohort = load_cohort(cfg=cfg.features, voiceprint=cfg.detect.voiceprint)
    if not same_frames:
        k = takes_keywords(profile.template_audio, cfg.features, cohort, cfg.detect.top_k)
        profile = replace(profile, templates=k.templates, average=k.average, kw_cohort_mean=k.kw_cohort_mean,
                          kw_cohort_std=k.kw_cohort_std, kw_enroll_mean=k.kw_enroll_mean,
                          feature_fingerprint=k.fingerprint)
    if profile.voiceprint_kind != cfg.detect.voiceprint:
        profile = replace(profile, **takes_speaker(as_saved(profile.template_audio), cfg, cohort))
    return profile


def as_saved(takes: list[np.ndarray]) -> list[np.ndarray]:
    """The takes as a profile saves them (float16), so that what is made from them at enrollment and again later
    gives the same numbers."""
    return [np.asarray(a, np.float16).astype(np.float32) for a in takes]


def takes_speaker(takes: list[np.ndarray], cfg: Config, cohort: Cohort) -> dict:
    """A profile's speaker side from its takes in cfg's voiceprint (DetectConfig.voiceprint), against the cohort:
    SpeakerProfile's fields, as enrollment makes them and the listener makes them again in its own voiceprint."""
    emb = speaker_embeddings(takes, cfg.detect.voiceprint, cfg.features)
    vp = voiceprint(emb)
    coh_cos = cosine(cohort.speaker_embeddings, vp)
    return dict(voiceprint=vp, spk_cohort_mean=float(coh_cos.mean()), spk_cohort_std=float(coh_cos.std()),
                spk_enroll_mean=float(leave_one_out(emb).mean()), voiceprint_kind=cfg.detect.voiceprint,
                model_fingerprint=model_fingerprint(cfg, cohort))


def takes_keywords(takes: list[np.ndarray], features: FeatureConfig, cohort: Cohort, k: int) -> SecondKeywords:
    """The keyword side of enrollment takes in one front end, against its cohort; the takes as a profile saves
    them (float16), so enrollment and predict (or the listener) make the same numbers."""
    templates = [keyword_frames(a, features) for a in as_saved(takes)]
    average, mean, std, loo = keyword_statistics(templates, cohort.keyword_frames, k)
    return SecondKeywords(frontend_fingerprint(features), templates, average, mean, std, loo)


def second_keywords(takes: list[np.ndarray], cfg: Config, cohort: Cohort) -> SecondKeywords:
    """The keyword side of enrollment takes in the second front end, against its cohort (takes_keywords)."""
    return takes_keywords(takes, cfg.second_features(), cohort, cfg.detect.top_k)


def second_profile(profile: SpeakerProfile, cfg: Config) -> tuple[SpeakerProfile, Cohort]:
    """The profile's keyword side in the second front end, and that front end's cohort: as stored at
    enrollment, or made from the stored takes (a profile enrolled without it, or under other weights)."""
    f2 = cfg.second_features()
    cohort = load_cohort(cfg=f2, voiceprint="ge2e")          # keyword frames only: no voiceprint needed
    hit = _SECOND.get(id(profile))
    if hit and hit[0]() is profile and hit[1] == f2:
        return hit[2], cohort
    s = profile.second
    if s is None or s.fingerprint != frontend_fingerprint(f2) or len(s.templates) != len(profile.templates):
        if len(profile.template_audio) != len(profile.templates):
            raise ProfileError("this profile keeps no enrollment takes, which the second keyword front end needs; "
                               "enroll again (or --set detect.second_frontend=)")
        s = second_keywords(profile.template_audio, cfg, cohort)
    second = replace(profile, templates=s.templates, average=s.average, kw_cohort_mean=s.kw_cohort_mean,
                     kw_cohort_std=s.kw_cohort_std, kw_enroll_mean=s.kw_enroll_mean, second=None)
    _SECOND.clear()      # one speaker at a time: keep no more than the last
    _SECOND[id(profile)] = (weakref.ref(profile), f2, second)
    return second, cohort


Matched = tuple[np.ndarray, list[list[dtw.Match]]]   # keyword_matches' (distances, matches[template][clip])


def keyword_pass(profile: SpeakerProfile, frames: list[np.ndarray], cohort: Cohort | None, cfg: Config,
                 nm_dist: np.ndarray | None = None, matched: Matched | None = None
                 ) -> tuple[dict[str, np.ndarray], np.ndarray, list[list[dtw.Match]]]:
    """(keyword columns, template x clip distances, matches) of clip frames against a profile's templates.

    matched: the templates' part, already made. cohort None: without the cohort and reversed takes (most of
    the DP work), so the columns that need them (COHORT_NAMES) are NaN; Deferred.complete adds them."""
    dist, matches = matched or keyword_matches(profile.all_templates(), frames)
    if cohort is None:
        cohort_dist = reversed_dist = np.full((1, len(frames)), np.nan)
    else:
        n = len(cohort.templates)    # one DP pass for both, so its per-row overhead is paid once
        both = keyword_distances(cohort.unit_templates + [unit(t)[::-1] for t in profile.templates], frames,
                                 normalised=True)
        cohort_dist, reversed_dist = both[:n], both[n:]
    return keyword_scores(profile, dist, matches, cohort_dist, reversed_dist, cfg.detect.top_k, nm_dist), dist, matches


# The keyword columns that need a pass's cohort part (mu_t, sd_t or the reversed takes: kws/scoring/scores.py).
COHORT_NAMES = ("kw_t", "kw_trel", "kw_rev", "kw_nm_t")


def cohort_columns(frontend: str | None = None) -> dict[str, str]:
    """{keyword column: its score column} of a pass's cohort part: the first front end's (None) or the second's,
    renamed (scores.second_name); registered columns only."""
    named = {n: n if frontend is None else scores.second_name(frontend, n) for n in COHORT_NAMES}
    return {n: c for n, c in named.items() if c in scores.COLUMNS}


def own_columns(frontend: str) -> dict[str, str]:
    """{keyword column: its score column} of a second front end's own pass (its templates against the clip):
    every registered keyword column of that front end but its cohort part's."""
    named = {n: scores.second_name(frontend, n) for n in scores.names("keyword") if n not in COHORT_NAMES}
    return {n: c for n, c in named.items() if c in scores.COLUMNS}


def deferred_groups(frontend: str | None, word: bool = False) -> list[tuple[str, ...]]:
    """The column groups score_and_locate(defer=True) leaves out, in the order the listener makes them: the
    first front end's cohort part, the speaker part, then a second front end's own pass and its cohort part,
    then the word embedding's (word: DetectConfig.word_embedding)."""
    groups = [tuple(cohort_columns().values()), SPEAKER_NAMES]
    if frontend:
        groups += [tuple(own_columns(frontend).values()), tuple(cohort_columns(frontend).values())]
    if word:
        groups.append(WORD_NAMES)
    return [g for g in groups if g]


@dataclass(frozen=True)
class Deferred:
    """A keyword pass whose cohort part score_and_locate(defer=True) left out: its COHORT_NAMES columns, NaN
    until complete() makes them for the clips that still need them."""
    profile: SpeakerProfile
    frames: list[np.ndarray]
    matched: Matched
    cohort: Cohort
    nm_dist: np.ndarray | None
    frontend: str | None        # the second front end's name (its columns are renamed), None: the first

    def complete(self, idx: np.ndarray, cfg: Config) -> dict[str, np.ndarray]:
        """The pass's COHORT_NAMES columns (under their score names) for clips idx."""
        dist, matches = self.matched
        with stage("dtw" if self.frontend is None else "second"):
            out, _, _ = keyword_pass(self.profile, [self.frames[i] for i in idx], self.cohort, cfg,
                                     None if self.nm_dist is None else self.nm_dist[:, idx],
                                     (dist[:, idx], [[row[i] for i in idx] for row in matches]))
        return {c: out[n] for n, c in cohort_columns(self.frontend).items()}


# The speaker columns, which score_and_locate(defer=True) also leaves out (DeferredSpeaker).
SPEAKER_NAMES = scores.names("speaker")


@dataclass(frozen=True)
class DeferredSpeaker:
    """The speaker part score_and_locate(defer=True) left out: the SPEAKER_NAMES columns, NaN until
    complete() makes them (the voiceprint of each clip's matched segment and of the whole clip)."""
    profile: SpeakerProfile
    clips: list[Prepared]
    best: list[dtw.Match]
    cohort: Cohort

    def complete(self, idx: np.ndarray, cfg: Config) -> dict[str, np.ndarray]:
        """The speaker columns for clips idx."""
        return speaker_part(self.profile, [self.clips[i] for i in idx], [self.best[i] for i in idx], self.cohort, cfg)


class DeferredSecond:
    """The second front end's pass that score_and_locate(defer=True) left out: complete() makes its own part (the
    span's frames in that front end, the templates matched in them) for the clips that still need it, and
    cohort_part() then the cohort part, as a Deferred of those clips."""

    def __init__(self, profile: SpeakerProfile, clips: list[Prepared], cohort: Cohort, features: FeatureConfig):
        self.profile, self.clips, self.cohort, self.features = profile, clips, cohort, features
        self.made: dict[int, tuple[np.ndarray, np.ndarray, list[dtw.Match]]] = {}   # clip: frames, distances, matches

    def complete(self, idx: np.ndarray, cfg: Config) -> dict[str, np.ndarray]:
        """The own pass's columns (under their score names) for clips idx."""
        with stage("second"):
            frames = [keyword_frames(self.clips[i].audio, self.features) for i in idx]
            out, dist, matches = keyword_pass(self.profile, frames, None, cfg)
        for j, i in enumerate(idx):
            self.made[int(i)] = (frames[j], dist[:, j], [row[j] for row in matches])
        return {c: out[n] for n, c in own_columns(self.features.frontend).items()}

    def cohort_part(self) -> "DeferredSecondCohort":
        return DeferredSecondCohort(self)


@dataclass(frozen=True)
class DeferredSecondCohort:
    """A DeferredSecond's cohort part, made for clips its own part was made for."""
    own: DeferredSecond

    def complete(self, idx: np.ndarray, cfg: Config) -> dict[str, np.ndarray]:
        made = [self.own.made[int(i)] for i in idx]
        matched = (np.stack([m[1] for m in made], axis=1), [list(row) for row in zip(*(m[2] for m in made))])
        d = Deferred(self.own.profile, [m[0] for m in made], matched, self.own.cohort, None, self.own.features.frontend)
        return d.complete(np.arange(len(idx)), cfg)


# The word embedding's columns (DetectConfig.word_embedding), also left out by score_and_locate(defer=True).
WORD_NAMES = scores.names("word")


@dataclass(frozen=True)
class DeferredWord:
    """The word embedding's part score_and_locate(defer=True) left out: the WORD_NAMES columns, NaN until
    complete() makes them (the most costly part a candidate can need, so the last)."""
    profile: SpeakerProfile
    clips: list[Prepared]
    best: list[dtw.Match]

    def complete(self, idx: np.ndarray, cfg: Config) -> dict[str, np.ndarray]:
        return word_scores(self.profile, [self.clips[i] for i in idx], [self.best[i] for i in idx], cfg)


Later = Deferred | DeferredSpeaker | DeferredSecond | DeferredSecondCohort | DeferredWord   # a part made later


def best_matches_of(dist: np.ndarray, matches: list[list[dtw.Match]]) -> list[dtw.Match]:
    """Each clip's match by its closest enrollment template (the averaged template, last, excluded)."""
    return [matches[t][i] for i, t in enumerate(np.argmin(PerTemplate.of(dist).takes, axis=0))]


def speaker_scores(profile: SpeakerProfile, segment_emb: np.ndarray, all_emb: np.ndarray,
                   cohort_emb: np.ndarray) -> dict[str, np.ndarray]:
    """The speaker columns (kws/scoring/scores.py): voiceprint cosines, z-normalised by the profile's impostor
    statistics and t-normalised per clip."""
    return scores.group_scores("speaker", scores.SpeakerInputs(
        seg=cosine(segment_emb, profile.voiceprint), whole=cosine(all_emb, profile.voiceprint),
        mu=profile.spk_cohort_mean, sd=profile.spk_cohort_std + 1e-6,
        cohort_cos=unit(segment_emb) @ unit(cohort_emb).T, enroll_mean=profile.spk_enroll_mean))


def matcher_scores(profile: SpeakerProfile, frames: list[np.ndarray], dist: np.ndarray,
                   matches: list[list[dtw.Match]], cfg: Config) -> np.ndarray:
    """The learned matcher's mean logit over each clip's closest enrollment templates."""
    k = min(TOP_TEMPLATES, len(profile.templates))
    best = np.argsort(PerTemplate.of(dist).takes, axis=0)[:k]     # (k, n_clips), the average excluded
    mats = np.stack([match_matrix(profile.templates[t], f, matches[t][i])
                     for i, f in enumerate(frames) for t in best[:, i]])
    return matcher_logits(matcher_for(cfg.features), mats).reshape(len(frames), k).mean(axis=1)


def matched_segment(p: Prepared, m: dtw.Match, cfg: Config, pad_s: float | None = None) -> np.ndarray:
    """Samples of the best keyword match, with some context (default: the speaker check's)."""
    step = SAMPLE_RATE / frames_per_second(cfg.features)
    pad = int((cfg.detect.segment_pad_s if pad_s is None else pad_s) * SAMPLE_RATE)
    a = max(0, int(m.start * step) - pad)
    b = min(len(p.audio), int((m.end + 1) * step) + pad)
    return p.audio[a:b] if b - a > SAMPLE_RATE // 10 else p.audio


# The takes' word embeddings, made once per profile object (a stream judges many batches of each phrase).
_TAKE_WORDS: dict[int, tuple[weakref.ref, list[np.ndarray], float]] = {}


def take_words(profile: SpeakerProfile, k: int) -> tuple[list[np.ndarray], float]:
    """The takes' word embeddings and their mean leave-one-out top-k cosine."""
    hit = _TAKE_WORDS.get(id(profile))
    if hit and hit[0]() is profile:
        return hit[1], hit[2]
    emb = [efficientword.embed(a) for a in profile.template_audio]
    cos = np.array([[efficientword.similarity(a, b) for b in emb] for a in emb])
    loo = float(np.mean([top_k_mean(np.delete(cos[:, i], i), k) for i in range(len(emb))])) if len(emb) > 1 else 1.0
    if len(_TAKE_WORDS) >= 16:        # a listener holds a few phrases; predict one speaker at a time
        _TAKE_WORDS.clear()
    _TAKE_WORDS[id(profile)] = (weakref.ref(profile), emb, loo)
    return emb, loo


def word_scores(profile: SpeakerProfile, clips: list[Prepared], best: list[dtw.Match],
                cfg: Config) -> dict[str, np.ndarray]:
    """The word-embedding columns (ewn_*) of each clip's matched segment against the takes'."""
    takes, enroll = take_words(profile, cfg.detect.top_k)
    with stage("word"):
        segs = [efficientword.embed(matched_segment(c, m, cfg, cfg.detect.word_pad_s)) for c, m in zip(clips, best)]
        cos = np.array([[efficientword.similarity(t, s) for s in segs] for t in takes])
    return scores.group_scores("word", scores.WordInputs(cos, enroll, cfg.detect.top_k))


def score_clips(profile: SpeakerProfile, clips: list[Prepared], cohort: Cohort, cfg: Config,
                speaker: bool = True) -> dict[str, np.ndarray]:
    """Every named score for each prepared clip; speaker=False skips the speaker encoder (and its scores)."""
    return score_and_locate(profile, clips, cohort, cfg, speaker)[0]


def score_and_locate(profile: SpeakerProfile, clips: list[Prepared], cohort: Cohort, cfg: Config,
                     speaker: bool = True, defer: bool = False
                     ) -> tuple[dict[str, np.ndarray], list[dtw.Match], list[Later]]:
    """score_clips, where each clip's best match lies (its closest enrollment template's), and, with defer,
    the parts left out (deferred_groups), their columns NaN till then, in the order to make them: the first
    front end's cohort part (Deferred), the speaker part (DeferredSpeaker), the second front end's own pass
    (DeferredSecond) and its cohort part, and the word embedding's part (DeferredWord)."""
    if not clips:
        groups = {"keyword", "condition", *(["speaker"] if speaker else []), *(["matcher"] if cfg.detect.matcher else []),
                  *(["word"] if cfg.detect.word_embedding else [])}
        return {name: np.zeros(0) for name in SCORE_NAMES if scores.COLUMNS[name].group in groups}, [], []
    frames = [c.frames for c in clips]
    later: list[Later] = []
    with stage("dtw"):
        nm_dist = noise_matched_distances(profile, clips, cfg)
        out, dist, matches = keyword_pass(profile, frames, None if defer else cohort, cfg, nm_dist)
    if defer:
        later.append(Deferred(profile, frames, (dist, matches), cohort, nm_dist, None))
    f2 = cfg.second_features()
    if f2 is not None:
        with stage("second"):
            second, cohort2 = second_profile(profile, cfg)
            if not defer:
                frames2 = [keyword_frames(c.audio, f2) for c in clips]
                kw2, _, _ = keyword_pass(second, frames2, cohort2, cfg)
                out.update({scores.second_name(f2.frontend, n): v for n, v in kw2.items()
                            if scores.second_name(f2.frontend, n) in scores.COLUMNS})
        if defer:
            own = DeferredSecond(second, clips, cohort2, f2)
            later += [own, own.cohort_part()]
            out.update({c: np.full(len(clips), np.nan) for c in (*own_columns(f2.frontend).values(),
                                                                  *cohort_columns(f2.frontend).values())})
    out.update(condition_scores(clips, cfg))
    best = best_matches_of(dist, matches)
    if cfg.detect.matcher:
        with stage("matcher"):
            out.update(scores.group_scores("matcher", matcher_scores(profile, frames, dist, matches, cfg)))
    if cfg.detect.word_embedding and defer:
        out.update({n: np.full(len(clips), np.nan) for n in WORD_NAMES})
        later.append(DeferredWord(profile, clips, best))
    elif cfg.detect.word_embedding:
        out.update(word_scores(profile, clips, best, cfg))
    if not speaker:
        return out, best, later
    if defer:   # made after the first front end's cohort part, before the second's: the cheaper order
        out.update({n: np.full(len(clips), np.nan) for n in SPEAKER_NAMES})
        later.insert(1, DeferredSpeaker(profile, clips, best, cohort))
        return out, best, later
    out.update(speaker_part(profile, clips, best, cohort, cfg))
    return out, best, later


def speaker_part(profile: SpeakerProfile, clips: list[Prepared], best: list[dtw.Match], cohort: Cohort,
                 cfg: Config) -> dict[str, np.ndarray]:
    """The speaker columns of clips whose best keyword matches are `best`: the voiceprint of each matched
    segment and of each whole clip, against the profile's and the cohort's."""
    segments = [matched_segment(c, m, cfg) for c, m in zip(clips, best)]
    with stage("encoder"):
        seg, whole = segment_and_clip_embeddings(segments, [c.audio for c in clips], cfg.detect.voiceprint,
                                                 cfg.features)
    with stage("voiceprint"):
        return speaker_scores(profile, seg, whole, cohort.speaker_embeddings)
