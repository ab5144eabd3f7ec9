import numpy as np
import pytest
from conftest import write
from scipy.signal import resample_poly
from synth import SR, stream, utterance

from kws.app.api import Profile
from kws.signal.audio import read_audio
from kws.scoring.calibrate import Calibration
from kws.config import DEFAULT, Config, StreamConfig
from kws.errors import AudioError, KwsError
from kws.app.stream import Resampler, SpeechWindows, StreamDetector, detect_blocks, read_blocks, threshold_offset

PHRASE = ["alpha", "delta"]


def blocks(y: np.ndarray, n: int = 8000):
    return (y[i:i + n] for i in range(0, len(y), n))


@pytest.mark.parametrize("sr", [44100, 48000, 8000, 22050])
def test_resampler_equals_whole_signal(sr):
    x = np.random.default_rng(0).standard_normal(sr * 2).astype(np.float32)
    whole = resample_poly(x, *(np.array([SR, sr]) // np.gcd(SR, sr)))
    r, sizes, parts, i = Resampler(sr), [1, 100, 4410, 777, 30000], [], 0
    while i < len(x):
        n = sizes[len(parts) % len(sizes)]
        parts.append(r(x[i:i + n]))
        i += n
    parts.append(r(np.zeros(0, np.float32), last=True))
    got = np.concatenate(parts)
    assert len(got) == len(whole) and np.max(np.abs(got - whole)) < 1e-5


def test_read_blocks_matches_read_audio_and_rejects_bad_files(tmp_path):
    y = resample_poly(utterance(PHRASE), 441, 160).astype(np.float32)
    p = write(tmp_path / "s.flac", np.stack([y, 0.5 * y], 1), sr=44100)
    got = list(read_blocks(p, block_s=0.25))
    assert max(len(b) for b in got) <= 0.26 * SR
    assert np.allclose(np.concatenate(got), read_audio(p), atol=1e-4)
    (tmp_path / "t.wav").write_text("text")
    (tmp_path / "e.wav").write_bytes(b"")
    for bad in ("t.wav", "e.wav", "missing.wav"):
        with pytest.raises(AudioError, match=bad):
            list(read_blocks(tmp_path / bad))


def test_windows_cover_speech_and_stay_short():
    y, truth = stream([(["bravo"], 120, 1.0), (["omega", "bravo"] * 6, 120, 1.0), (PHRASE, 120, 1.0)], seed=1)
    sw = SpeechWindows()
    wins = [w for b in blocks(y) for w in sw.feed(b)] + sw.flush()
    limit = StreamConfig().window_s * SR
    assert all(len(w.audio) <= limit for w in wins)
    for start, end, _ in truth:   # every utterance's speech lies within the windows
        covered = [w for w in wins if w.start < end * SR and w.end > start * SR]
        assert covered and min(w.start for w in covered) <= start * SR + 0.35 * SR
        assert max(w.end for w in covered) >= end * SR - 0.35 * SR
    long = [w for w in wins if w.start < truth[1][1] * SR and w.end > truth[1][0] * SR]
    assert len(long) >= 3   # 6 s of speech: cut into overlapping windows
    assert all(b.start < a.end - 1.5 * SR for a, b in zip(long, long[1:]))


def test_buffers_stay_bounded_on_a_long_stream():
    """Memory flatness at unit level: 10 minutes of speech and noise leave the buffers no larger."""
    sw = SpeechWindows()
    rng = np.random.default_rng(0)
    talk = np.concatenate([utterance(["omega", "bravo"] * 4, seed=2), np.zeros(SR, np.float32)])
    sizes = []
    for minute in range(10):
        y = np.resize(talk, 60 * SR) + 1e-3 * rng.standard_normal(60 * SR).astype(np.float32)
        for b in blocks(y):
            sw.feed(b)
        sizes.append((len(sw.buffer.data), len(sw.recent_db), len(sw.partial)))
    assert sizes[-1] == sizes[0] and len(sw.buffer.data) == sw.buffer.capacity
    assert sw.buffer.capacity < 8 * SR


def test_phrase_detected_at_its_time_and_nowhere_else(personal_profile):
    utts = [(["bravo"], 120, 1.0), (PHRASE, 120, 1.0), (["omega", "bravo"], 120, 1.0), (["delta", "omega"], 120, 1.0),
            (["bravo", "alpha", "delta"], 120, 1.0), (["omega"], 200, 1.15), (PHRASE, 120, 1.0),
            (["bravo", "omega", "bravo"], 200, 1.15), (["alpha", "delta", "omega"], 120, 1.0), (["bravo"], 120, 1.0)]
    y, truth = stream(utts, seed=3)
    det = StreamDetector(Profile.load(personal_profile).phrases, Calibration.for_config(DEFAULT))
    found = list(detect_blocks(det, blocks(y)))
    wanted = [(s, e) for s, e, w in truth if "alpha" in w and "delta" in w]
    assert len(found) == len(wanted), found
    for d, (s, e) in zip(found, wanted):
        assert d.phrase == "alpha-delta" and s - 1 <= d.start_s < d.end_s <= e + 1
        assert d.fused > d.threshold and d.decided_s >= d.end_s
    assert det.pending == [] and abs(det.seconds - len(y) / SR) < 1e-6


def test_one_detection_per_utterance_in_long_speech(personal_profile):
    """The phrase inside 7 s of unbroken speech is seen by two overlapping windows, reported once."""
    words = ["omega", "bravo", "omega", "bravo", "alpha", "delta", "bravo", "omega", "bravo", "omega"]
    y, truth = stream([(words, 120, 1.0)], seed=4)
    cfg = Config(stream=StreamConfig(max_delay_s=0.0))   # score each window as soon as it is complete
    det = StreamDetector(Profile.load(personal_profile).phrases, Calibration.for_config(cfg), cfg=cfg)
    found = list(detect_blocks(det, blocks(y)))
    assert len(found) == 1
    assert truth[0][0] + 2.0 < found[0].start_s < found[0].end_s < truth[0][1] - 1.5


def test_sensitivity_maps_onto_the_threshold():
    assert threshold_offset("balanced") == 0.0
    assert threshold_offset("fewest-false-alarms") == 1.0 and threshold_offset("fewest-misses") == -1.0
    assert threshold_offset(0.75) == pytest.approx(-0.5) and threshold_offset("0.25") == pytest.approx(0.5)
    for bad in ("loud", 1.5, "-0.1"):
        with pytest.raises(KwsError, match="sensitivity"):
            threshold_offset(bad)


def test_words_apart_stay_one_phrase(tmp_path):
    """Takes and stream both pause 0.6 s between the words: longer than the VAD's merge gap, so only
    joining pauses in the stream (join_gap_s) keeps the phrase whole in one window."""
    from synth import word
    from kws.enrollment.enroll import build_profile

    def apart(seed, f0=120.0):
        gap = np.zeros(int(0.6 * SR), np.float32)
        y = np.concatenate([gap, word("alpha", f0, seed=seed), gap, word("delta", f0, seed=seed + 1), gap])
        return y + 1e-4 * np.random.default_rng(seed).standard_normal(len(y)).astype(np.float32)

    profile = build_profile([write(tmp_path / f"t{i}.wav", apart(10 * i)) for i in range(5)])
    y = np.concatenate([utterance(["bravo", "omega"], seed=1), apart(77), utterance(["omega"], seed=2)])
    for join, expected in ((StreamConfig().join_gap_s, 1), (0.3, 0)):
        cfg = Config(stream=StreamConfig(join_gap_s=join))
        found = list(detect_blocks(StreamDetector({"ad": profile}, Calibration.for_config(cfg), cfg=cfg), blocks(y)))
        assert len(found) == expected, (join, found)


def test_nan_block_is_silence_and_the_scan_goes_on(tmp_path, caplog):
    """D12: one NaN sample used to stop the scan for the rest of the file."""
    import logging

    import soundfile as sf
    y = np.concatenate([utterance(PHRASE, seed=1), np.zeros(SR * 3, np.float32), utterance(PHRASE, seed=2)])
    y[SR] = np.nan
    sf.write(tmp_path / "nan.wav", y, SR, subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        out = np.concatenate(list(read_blocks(tmp_path / "nan.wav")))
    assert len(out) == len(y) and np.isfinite(out).all() and "treated as silence" in caplog.text
    assert np.array_equal(out[-SR:], y[-SR:])
