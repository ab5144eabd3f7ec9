import numpy as np
import pytest

from kws.signal import conditions
from kws.config import DEFAULT
from synth import SR, utterance


def _noisy(y: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    n = np.random.default_rng(seed).standard_normal(len(y))
    speech_power = np.mean(y[np.abs(y) > 0.01] ** 2)
    return (y + n * np.sqrt(speech_power / 10 ** (snr_db / 10))).astype(np.float32)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return utterance(["alpha", "bravo"], seed=3)


def test_snr_estimate_follows_the_noise_added(speech):
    est = [conditions.measure(_noisy(speech, snr)).snr_db for snr in (0, 10, 20)]
    assert est[0] < est[1] < est[2]
    assert abs(est[1] - 10) < 6 and abs(est[2] - 20) < 6


def test_quiet_background_gives_a_high_snr_and_dc_is_no_noise(speech):
    clean = conditions.measure(speech)
    assert clean.snr_db > 30 and clean.paused and clean.clipped_fraction == 0
    offset = conditions.measure(speech + 0.05)      # a DC offset 34 dB above the background
    assert abs(offset.noise_dbfs - clean.noise_dbfs) < 1
    silent = np.concatenate([np.zeros(SR // 2, np.float32), speech[SR // 4: -SR // 4], np.zeros(SR // 2, np.float32)])
    assert conditions.measure(silent).snr_db > 60    # digital silence around the speech


def test_speech_length_and_clipping(speech):
    c = conditions.measure(np.clip(speech * 10, -1, 1))
    assert 0.5 < c.speech_s < len(speech) / SR and c.clipped_fraction > 0.01
    silent = conditions.measure(np.zeros(SR, np.float32))
    assert silent.speech_s == 0 and np.isnan(silent.snr_db) and silent.level_dbfs == conditions.SILENCE_DB


def test_measure_takes_the_callers_vad_decisions(speech):
    from kws.signal.vad import frame_decisions
    dec = frame_decisions(speech, DEFAULT.vad)
    assert conditions.measure(speech, DEFAULT.vad, dec) == conditions.measure(speech, DEFAULT.vad)


def test_stream_noise_floor_hears_the_room_not_the_voices(speech):
    """Speech back to back over a noise bed: the running floor is the bed's level, and in_stream judges a
    clip cut from it against that floor, not against its own few frames of non-speech."""
    from kws.signal.vad import StreamVad
    rng = np.random.default_rng(0)
    talk = np.concatenate([speech] * 8)
    bed = 0.003 * rng.standard_normal(len(talk))          # about -50 dBFS
    vad, floor = StreamVad(DEFAULT.vad), conditions.NoiseFloor(DEFAULT.vad, window_s=20.0)
    y = (talk + bed).astype(np.float32)
    for i in range(0, len(y), 1600):
        floor.push(*vad.push(y[i:i + 1600]))
    bed_db = 10 * np.log10(np.mean(bed ** 2))
    assert abs(floor.dbfs() - bed_db) < 3.0
    clip = conditions.measure(y[:len(speech)], DEFAULT.vad)
    judged = conditions.in_stream(clip, floor.dbfs())
    assert judged.noise_dbfs == floor.dbfs() and judged.snr_db == pytest.approx(clip.level_dbfs - floor.dbfs())
    assert conditions.in_stream(clip, float("nan")) == clip


def test_stream_noise_floor_keeps_the_quiet_non_speech_for_noise_matching(speech):
    """keep_samples: the floor also hands out its window's non-speech, newest first, from the quieter half of
    those frames (the bed, not a missed onset); without it, or before a pause, nothing."""
    from kws.signal.vad import StreamVad
    rng = np.random.default_rng(1)
    bed = 0.003 * rng.standard_normal(len(speech) * 4)
    y = (np.concatenate([speech] * 4) + bed).astype(np.float32)
    vad, floor = StreamVad(DEFAULT.vad), conditions.NoiseFloor(DEFAULT.vad, window_s=20.0, keep_samples=True)
    plain = conditions.NoiseFloor(DEFAULT.vad, window_s=20.0)
    assert len(floor.samples(32000)) == 0
    for i in range(0, len(y), 1600):
        power, speech_frames, frames = vad.push(y[i:i + 1600])
        floor.push(power, speech_frames, frames)
        plain.push(power, speech_frames, frames)
    got = floor.samples(16000)
    assert len(got) == 16000
    assert abs(10 * np.log10(np.mean(got.astype(np.float64) ** 2)) - 10 * np.log10(np.mean(bed ** 2))) < 2.0
    assert len(plain.samples(16000)) == 0
    with pytest.raises(ValueError):
        floor.push(power, speech_frames)
