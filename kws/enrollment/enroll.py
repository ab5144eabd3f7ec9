"""Enrollment: five recordings of the wake phrase -> one SpeakerProfile."""
from __future__ import annotations

import logging
from pathlib import Path


from kws.enrollment import quality
from kws.signal.audio import probe, read_audio
from kws.scoring.cohort import Cohort, load_cohort
from kws.config import SAMPLE_RATE, Config
from kws.scoring.detect import Prepared, keyword_statistics, prepare, second_keywords, takes_speaker
from kws.nn.encoder import frontend_fingerprint
from kws.errors import AudioError, EnrollmentError
from kws.scoring.profile import SpeakerProfile, max_template_frames
from kws.safefile import file_digest
from kws.scoring.templates import PerTemplate

log = logging.getLogger(__name__)

def check_clip(path: Path, cfg: Config) -> tuple[Prepared | None, list[str]]:
    """Read and trim one enrollment clip: (the clip, or None when no template can be cut from it; what is
    wrong with it). Level, clipping, noise and length are judged by quality.measure, the one validator
    the quality report uses too; here its verdicts are warnings, since the platform must enroll regardless."""
    notes = []
    try:
        info = probe(path)
        y = read_audio(path, cfg.audio)
    except AudioError as e:
        return None, [str(e)]
    if info.sample_rate != cfg.audio.sample_rate or info.channels != 1 or info.subtype != "PCM_16":
        notes.append(f"{path}: {info.sample_rate} Hz, {info.channels} channel(s), {info.subtype} instead of "
                     f"{cfg.audio.sample_rate} Hz mono PCM_16; converted and used")
    c = prepare(y, cfg, pad_ms=cfg.enroll.template_pad_ms)
    if not c.has_speech:
        return None, notes + [f"{path}: no speech found (silent or only noise); record the phrase again"]
    if len(c.frames) < cfg.enroll.min_template_frames:
        return None, notes + [f"{path}: speech too short ({len(c.audio) / SAMPLE_RATE:.2f} s); record the whole phrase"]
    if len(c.frames) > max_template_frames(cfg):
        return None, notes + [f"{path}: {len(c.audio) / SAMPLE_RATE:.0f} s from the first to the last speech, more than "
                              f"the {cfg.profile.max_template_s:.0f} s a template may hold; record the phrase alone"]
    q = quality.measure(y, path.name, cfg, info.sample_rate, info.channels, cond=c.conditions)
    return c, notes + [f"{path}: {p} (used)" for p in q.problems]


def load_clips(paths: list[Path], cfg: Config) -> tuple[list[Prepared], list[str], list[str]]:
    """Read and trim each clip; skip unusable ones and repeated recordings, with a warning saying why."""
    clips, names, problems, seen = [], [], [], {}
    for p in paths:
        digest = file_digest(p) if p.is_file() else None
        if digest in seen:
            problems.append(f"{p}: the same recording as {seen[digest]}; skipped (record a new take)")
            continue
        c, notes = check_clip(p, cfg)
        problems += notes
        if c is not None:
            clips.append(c)
            names.append(p.name)
            seen[digest] = p.name
    for msg in problems:
        log.warning(msg)
    return clips, names, problems


def build_profile(paths: list[Path], cfg: Config = Config(), cohort: Cohort | None = None) -> SpeakerProfile:
    """Templates, DTW average, voiceprint and the statistics that normalise a speaker's scores."""
    if len(paths) != cfg.enroll.expected_takes:
        log.warning("%d enrollment clips given; %d are expected, enrolling from what there is",
                    len(paths), cfg.enroll.expected_takes)
    clips, names, problems = load_clips(paths, cfg)
    if not clips:
        raise EnrollmentError("no usable enrollment clip:\n  " + "\n  ".join(problems or ["no .wav files"]))
    cohort = cohort or load_cohort(cfg=cfg.features, voiceprint=cfg.detect.voiceprint)
    templates = [c.frames for c in clips]
    average, kw_mean, kw_std, kw_loo = keyword_statistics(templates, cohort.keyword_frames, cfg.detect.top_k)

    profile = SpeakerProfile(
        templates=templates, average=average, kw_cohort_mean=kw_mean, kw_cohort_std=kw_std, kw_enroll_mean=kw_loo,
        **takes_speaker([c.audio for c in clips], cfg, cohort),
        feature_fingerprint=frontend_fingerprint(cfg.features), template_audio=[c.audio for c in clips],
        clips=names, clip_seconds=[round(len(c.audio) / SAMPLE_RATE, 3) for c in clips], warnings=problems,
        second=(second_keywords([c.audio for c in clips], cfg, load_cohort(cfg=cfg.second_features(), voiceprint="ge2e"))
                if cfg.second_features() else None))
    log.info("enrolled %d clip(s): LOO keyword distance %.3f (cohort %.3f), LOO speaker cosine %.3f (cohort %.3f)",
             len(clips), profile.kw_enroll_mean, float(PerTemplate.of(profile.kw_cohort_mean).takes.mean()),
             profile.spk_enroll_mean, profile.spk_cohort_mean)
    return profile
