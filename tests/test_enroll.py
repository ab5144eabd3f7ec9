"""Enrollment validates each clip, says what is wrong and what to do, and enrolls from what is usable."""
import logging

import numpy as np
import pytest
from conftest import write
from synth import SR, utterance, word

from kws.config import DEFAULT
from kws.enrollment.enroll import build_profile, load_clips
from kws.errors import EnrollmentError


def takes(tmp_path, n=5):
    return [write(tmp_path / f"take{i}.wav", utterance(["alpha", "delta"], seed=i)) for i in range(n)]


def test_good_takes_have_no_complaints(tmp_path):
    clips, names, problems = load_clips(takes(tmp_path), DEFAULT)
    assert len(clips) == 5 and problems == []


@pytest.mark.parametrize("make, expect, usable", [
    (lambda: np.zeros(SR * 2, np.float32), "no speech", False),
    (lambda: 0.001 * np.random.default_rng(0).standard_normal(SR * 2).astype(np.float32), "no speech", False),
    (lambda: np.pad(word("alpha", seconds_per_vowel=0.03), SR // 2), "too short", False),
    (lambda: np.clip(utterance(["alpha", "delta"], seed=9) * 8, -1, 1), "clipped", True),
    (lambda: utterance(["alpha", "delta"], seed=9) * 0.03, "quiet (", True),
    (lambda: utterance(["alpha", "delta", "bravo", "omega", "alpha", "delta", "bravo"], seed=9), "say only the phrase", True),
])
def test_each_problem_is_named(tmp_path, make, expect, usable):
    paths = takes(tmp_path, 4) + [write(tmp_path / "odd.wav", make())]
    clips, names, problems = load_clips(paths, DEFAULT)
    assert any("odd.wav" in p and expect in p for p in problems), problems
    assert ("odd.wav" in names) == usable and len(clips) == 4 + usable


def test_wrong_rate_channels_and_format_are_converted_and_said(tmp_path):
    from scipy.signal import resample_poly
    y = resample_poly(utterance(["alpha", "delta"], seed=7), 441, 160).astype(np.float32)
    paths = takes(tmp_path, 4) + [write(tmp_path / "cd.wav", np.stack([y, y], 1), sr=44100, subtype="FLOAT")]
    clips, names, problems = load_clips(paths, DEFAULT)
    assert "cd.wav" in names
    assert any("cd.wav" in p and "44100 Hz, 2 channel(s), FLOAT" in p and "converted" in p for p in problems)


def test_unreadable_and_repeated_takes_are_skipped(tmp_path):
    paths = takes(tmp_path, 3)
    (tmp_path / "copy.wav").write_bytes(paths[0].read_bytes())
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    clips, names, problems = load_clips(paths + [tmp_path / "copy.wav", tmp_path / "junk.wav"], DEFAULT)
    assert names == ["take0.wav", "take1.wav", "take2.wav"]
    assert any("copy.wav" in p and "same recording" in p for p in problems)
    assert any("junk.wav" in p and "not readable" in p for p in problems)


def test_fewer_than_five_still_enrolls_and_says_so(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        profile = build_profile(takes(tmp_path, 2), DEFAULT)
    assert len(profile.templates) == 2
    assert "2 enrollment clips given; 5 are expected" in caplog.text


def test_nothing_usable_is_an_error_listing_every_clip(tmp_path):
    paths = [write(tmp_path / f"s{i}.wav", np.zeros(SR, np.float32)) for i in range(2)]
    with pytest.raises(EnrollmentError) as e:
        build_profile(paths, DEFAULT)
    assert "s0.wav" in str(e.value) and "s1.wav" in str(e.value)
