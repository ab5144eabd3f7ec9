"""Noise-aware scoring: the clip's conditions as columns, and templates matched in the clip's own noise."""
import numpy as np
import pytest

from dataclasses import replace

from kws.config import DEFAULT as PLAIN
from kws.scoring.detect import CONDITION_NAMES, noise_matched_distances, prepare, score_clips
from kws.scoring.cohort import load_cohort
from kws.scoring.profile import SpeakerProfile
from synth import SR, utterance


DEFAULT = replace(PLAIN, detect=replace(PLAIN.detect, noise_match=True))   # noise matching is a switch


def _with_noise(y: np.ndarray, snr_db: float, seed: int = 5) -> np.ndarray:
    pad = np.zeros(SR // 2, np.float32)
    y = np.concatenate([pad, y, pad])
    n = np.random.default_rng(seed).standard_normal(len(y))
    p = np.mean(y[np.abs(y) > 0.01] ** 2)
    return (y + n * np.sqrt(p / 10 ** (snr_db / 10))).astype(np.float32)


@pytest.fixture(scope="module")
def profile(enrolled) -> SpeakerProfile:
    return SpeakerProfile.load(enrolled)


def test_noisy_clip_is_matched_against_templates_in_its_own_noise(profile):
    clean = utterance(["alpha", "delta"], seed=42)
    noisy = prepare(_with_noise(clean, 3.0), DEFAULT)
    assert noisy.conditions.snr_db < 15 and len(noisy.noise) >= 0.1 * SR
    nm = noise_matched_distances(profile, [noisy, prepare(clean, DEFAULT)], DEFAULT)
    assert np.isfinite(nm[:, 0]).all() and np.isnan(nm[:, 1]).all()      # a clean clip keeps its plain match
    scores = score_clips(profile, [noisy], load_cohort(cfg=DEFAULT.features, voiceprint=DEFAULT.detect.voiceprint),
                         DEFAULT, speaker=False)
    assert scores["kw_nm_gain"][0] > 0        # the phrase in noise sits closer to takes in the same noise
    assert set(CONDITION_NAMES) <= set(scores) and scores["cond_snr"][0] < 15


def test_noise_matching_can_be_switched_off_and_needs_the_takes(profile):
    noisy = prepare(_with_noise(utterance(["alpha", "delta"], seed=43), 3.0), DEFAULT)
    assert np.isnan(noise_matched_distances(profile, [noisy], PLAIN)).all()     # off by default
    assert np.isnan(noise_matched_distances(replace(profile, template_audio=[]), [noisy], DEFAULT)).all()
