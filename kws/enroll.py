"""Enrollment: five recordings of the wake phrase -> one SpeakerProfile."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from . import dtw
from .audio import read_audio
from .cohort import Cohort, load_cohort
from .config import SAMPLE_RATE, Config
from .detect import Prepared, keyword_distances, prepare, top_k_mean
from .encoder import embed_speakers
from .errors import AudioError, EnrollmentError
from .profile import SpeakerProfile
from .voiceprint import cosine, leave_one_out, voiceprint

log = logging.getLogger(__name__)

TEMPLATE_PAD_MS = 30    # templates are cut tight: padding would demand silence around the phrase
MIN_TEMPLATE_FRAMES = 8


def load_clips(paths: list[Path], cfg: Config) -> tuple[list[Prepared], list[str], list[str]]:
    """Read and trim each clip; skip unusable ones with a warning saying why."""
    clips, names, problems = [], [], []
    for p in paths:
        try:
            y = read_audio(p, cfg.audio)
        except AudioError as e:
            problems.append(str(e))
            continue
        c = prepare(y, cfg, pad_ms=TEMPLATE_PAD_MS)
        if not c.has_speech:
            problems.append(f"{p}: no speech found (silent or only noise); record the phrase again")
        elif len(c.frames) < MIN_TEMPLATE_FRAMES:
            problems.append(f"{p}: speech too short ({len(c.audio) / SAMPLE_RATE:.2f} s); record the whole phrase")
        else:
            if np.abs(y).max() >= 0.999:
                problems.append(f"{p}: clipped (peak at full scale); used, but record more quietly")
            clips.append(c)
            names.append(p.name)
    for msg in problems:
        log.warning(msg)
    return clips, names, problems


def build_profile(paths: list[Path], cfg: Config = Config(), cohort: Cohort | None = None) -> SpeakerProfile:
    """Templates, DTW average, voiceprint and the statistics that normalise a speaker's scores."""
    if len(paths) < 5:
        log.warning("%d enrollment clips given; 5 are expected, enrolling from what there is", len(paths))
    clips, names, problems = load_clips(paths, cfg)
    if not clips:
        raise EnrollmentError("no usable enrollment clip:\n  " + "\n  ".join(problems or ["no .wav files"]))
    cohort = cohort or load_cohort(cfg=cfg.features)
    templates = [c.frames for c in clips]
    average = dtw.average_template(templates)
    all_t = [*templates, average]

    # How far impostor speech sits from each template: the scale every test distance is judged on.
    coh_dist = keyword_distances(all_t, cohort.keyword_frames)
    # How close the genuine phrase sits: each clip against the other clips' templates.
    self_dist = keyword_distances(templates, templates)
    np.fill_diagonal(self_dist, np.nan)
    loo = [top_k_mean(self_dist[~np.isnan(self_dist[:, i]), i], cfg.detect.top_k, largest=False)
           for i in range(len(templates))] if len(templates) > 1 else [0.0]

    emb = embed_speakers([c.audio for c in clips])
    vp = voiceprint(emb)
    coh_cos = cosine(cohort.speaker_embeddings, vp)
    profile = SpeakerProfile(
        templates=templates, average=average, voiceprint=vp,
        kw_cohort_mean=coh_dist.mean(axis=1), kw_cohort_std=coh_dist.std(axis=1),
        kw_enroll_mean=float(np.mean(loo)),
        spk_cohort_mean=float(coh_cos.mean()), spk_cohort_std=float(coh_cos.std()),
        spk_enroll_mean=float(leave_one_out(emb).mean()),
        feature_fingerprint=cfg.features.fingerprint(),
        clips=names, clip_seconds=[round(len(c.audio) / SAMPLE_RATE, 3) for c in clips], warnings=problems)
    log.info("enrolled %d clip(s): LOO keyword distance %.3f (cohort %.3f), LOO speaker cosine %.3f (cohort %.3f)",
             len(clips), profile.kw_enroll_mean, float(profile.kw_cohort_mean[:-1].mean()),
             profile.spk_enroll_mean, profile.spk_cohort_mean)
    return profile
