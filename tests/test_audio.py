import numpy as np
import pytest
from conftest import write
from synth import SR, utterance

from kws.audio import list_wavs, read_audio
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
