import numpy as np
import pytest
from conftest import write
from synth import utterance

from kws.enrollment.quality import assess, assess_files, format_report, measure


def takes(n=5, words=("alpha", "delta")):
    return [utterance(list(words), seed=i) for i in range(n)]


def test_clean_takes_pass():
    q = assess([(measure(y, f"t{i}.wav"), y) for i, y in enumerate(takes())])
    assert not any(c.redo for c in q.clips), format_report(q)
    assert q.advice == ("all takes look fine",)
    c = q.clips[0]
    assert -30 < c.level_dbfs < -5 and c.clipped_fraction == 0
    assert 0.8 < c.speech_s < 2.0 and c.snr_db > 30
    assert all(0 < c.consistency < 1.5 * q.median_consistency for c in q.clips)


@pytest.mark.parametrize("damage, problem", [
    (lambda y: y * 0.02, "quiet"),
    (lambda y: np.clip(y * 20, -1, 1), "clipped"),
    (lambda y: y + 0.05 * np.random.default_rng(0).standard_normal(len(y)).astype(np.float32), "noisy"),
    (lambda y: np.zeros_like(y), "no speech"),
])
def test_damaged_take_is_flagged(damage, problem):
    y = takes(1)[0]
    assert not measure(y, "ok.wav").redo
    m = measure(damage(y).astype(np.float32), "bad.wav")
    assert m.redo and any(problem in p for p in m.problems), m.problems


def test_other_word_is_the_outlier():
    ys = takes(4) + [utterance(["bravo", "omega"], seed=9)]
    q = assess([(measure(y, f"t{i}.wav"), y) for i, y in enumerate(ys)])
    assert [c.redo for c in q.clips] == [False] * 4 + [True]
    assert "unlike the other takes" in q.clips[-1].problems[0]
    assert "record again: t4.wav" in q.advice


def test_files_any_rate_unreadable_and_report(tmp_path):
    from scipy.signal import resample_poly
    ys = takes(3)
    paths = [write(tmp_path / f"t{i}.wav", y) for i, y in enumerate(ys[:2])]
    y44 = resample_poly(ys[2], 441, 160).astype(np.float32)
    paths.append(write(tmp_path / "t44k.flac", np.stack([y44, y44], 1), sr=44100))
    (tmp_path / "broken.wav").write_text("not audio")
    q = assess_files(paths + [tmp_path / "broken.wav"])
    by = {c.name: c for c in q.clips}
    assert any("converted from 44100 Hz, 2 channel(s)" in n for n in by["t44k.flac"].notes)
    assert not by["t44k.flac"].redo and by["broken.wav"].redo
    assert "not readable" in by["broken.wav"].problems[0]
    assert any("3 usable take(s)" in a for a in q.advice) and any("broken.wav" in a for a in q.advice)
    text = format_report(q)
    assert all(name in text for name in by) and "REDO" in text and "advice:" in text


def test_loose_set_is_advised():
    words = [["alpha", "delta"], ["bravo", "omega"], ["omega"], ["delta", "bravo"], ["alpha", "omega", "bravo"]]
    ys = [utterance(w, seed=i) for i, w in enumerate(words)]
    q = assess([(measure(y, f"t{i}.wav"), y) for i, y in enumerate(ys)])
    assert q.median_consistency > 0.45 and any("differ from each other" in a for a in q.advice)
