import numpy as np
import pytest
from conftest import write
from synth import SR, utterance

from kws.signal.audio import list_wavs, read_audio
from kws.errors import AudioError


def test_reads_16k_mono(tmp_path):
    y = utterance(["alpha"])
    out = read_audio(write(tmp_path / "a.wav", y))
    assert out.dtype == np.float32 and out.shape == y.shape
    assert np.allclose(out, y, atol=1e-3)


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    y = utterance(["alpha"])
    from scipy.signal import resample_poly
    y44 = resample_poly(y, 441, 160).astype(np.float32)
    out = read_audio(write(tmp_path / "s.wav", np.stack([y44, y44], axis=1), sr=44100))
    assert abs(len(out) - len(y)) <= 2
    assert np.corrcoef(out[:len(y) - 2], y[:len(y) - 2])[0, 1] > 0.99


@pytest.mark.parametrize("subtype", ["PCM_U8", "FLOAT", "PCM_24"])
def test_other_sample_formats(tmp_path, subtype):
    out = read_audio(write(tmp_path / "f.wav", utterance(["bravo"]), subtype=subtype))
    assert out.ndim == 1 and len(out) > SR // 2


def test_zero_byte_file(tmp_path):
    (tmp_path / "z.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="0 bytes"):
        read_audio(tmp_path / "z.wav")


def test_text_with_wav_name(tmp_path):
    (tmp_path / "t.wav").write_text("this is not audio\n" * 50)
    with pytest.raises(AudioError, match="not readable as audio"):
        read_audio(tmp_path / "t.wav")


def test_truncated_header(tmp_path):
    p = write(tmp_path / "c.wav", utterance(["alpha"]))
    p.write_bytes(p.read_bytes()[:30])
    with pytest.raises(AudioError, match="c.wav"):
        read_audio(p)


def test_too_short(tmp_path):
    with pytest.raises(AudioError, match="only"):
        read_audio(write(tmp_path / "s.wav", np.zeros(100, np.float32)))


def test_long_file_is_cut(tmp_path):
    from kws.config import AudioConfig
    out = read_audio(write(tmp_path / "l.wav", np.zeros(SR * 5, np.float32)), AudioConfig(max_seconds=2.0))
    assert len(out) == 2 * SR


def test_list_wavs_sorted_and_filtered(tmp_path):
    for n in ["b.wav", "a.WAV", "notes.txt"]:
        (tmp_path / n).write_bytes(b"x")
    (tmp_path / "sub.wav").mkdir()
    assert [p.name for p in list_wavs(tmp_path)] == ["a.WAV", "b.wav"]
    with pytest.raises(AudioError, match="not a directory"):
        list_wavs(tmp_path / "missing")


def test_absurd_header_rate_is_refused_without_a_filter(tmp_path):
    """D17: a header claiming 1 Hz used to be resampled with a 320k-tap filter (gigabytes, minutes)."""
    import soundfile as sf
    sf.write(tmp_path / "one_hz.wav", np.zeros(20000, np.float32), 1, subtype="PCM_16")
    with pytest.raises(AudioError, match="1 Hz.*not a speech recording"):
        read_audio(tmp_path / "one_hz.wav")
    from kws.app.stream import read_blocks
    with pytest.raises(AudioError, match="1 Hz"):
        next(read_blocks(tmp_path / "one_hz.wav"))


def test_truncated_wav_is_reported(tmp_path, caplog):
    """D12: a WAV cut short used to be read partly without a word."""
    import logging
    data = write(tmp_path / "a.wav", utterance(["alpha", "delta"])).read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    from kws.app.stream import read_blocks
    with caplog.at_level(logging.WARNING):
        read_audio(tmp_path / "cut.wav")
        list(read_blocks(tmp_path / "cut.wav"))
    assert caplog.text.count("cut.wav: truncated") == 2


def test_long_audio_is_capped_before_conversion_and_hashed_in_chunks(tmp_path):
    """D14: memory follows the cap, not the header; chunked reading and hashing give the same values."""
    import hashlib

    from kws.config import AudioConfig
    from kws.safefile import file_digest
    y = np.random.default_rng(0).standard_normal(SR * 30).astype(np.float32) * 0.1
    p = write(tmp_path / "long.wav", y, sr=48000)
    assert len(read_audio(p, AudioConfig(max_seconds=5.0))) == 5 * SR
    assert file_digest(p, chunk=4096) == hashlib.sha1(p.read_bytes()).hexdigest()


def test_chunked_features_equal_whole(monkeypatch):
    """D14: STFT and VAD chunks change nothing but memory."""
    from kws.signal import features
    from kws.signal import vad
    y = np.random.default_rng(1).standard_normal(SR * 7).astype(np.float32) * 0.1
    power, mel, dec = features.power_spectrogram(y, 400, 160), features.mel_power(y, 40, 400, 160), vad.frame_decisions(y)
    monkeypatch.setattr(features, "STFT_CHUNK", 37)
    monkeypatch.setattr(vad, "CHUNK", 11)
    assert np.array_equal(features.power_spectrogram(y, 400, 160), power) and np.array_equal(vad.frame_decisions(y), dec)
    assert np.allclose(features.mel_power(y, 40, 400, 160), mel, rtol=1e-6)   # BLAS may round a small chunk apart
