"""kws listen and kws enroll --record against a fake sounddevice module: no sound card needed."""
import json
import sys
import types

import numpy as np
import pytest
from scipy.signal import resample_poly
from synth import SR, stream, utterance

from kws.app import cli
from kws.app import mic
from kws.errors import KwsError


class PortAudioError(Exception):
    pass


def fake_sounddevice(signal: np.ndarray | None, rate: int = 44100, channels: int = 2, *, no_device=False,
                     busy=False, interrupt=False, opened=None):
    """A module with sounddevice's names; its input stream plays `signal` (rate, channels) block by block,
    then raises KeyboardInterrupt (interrupt) or plays silence."""
    sd = types.ModuleType("sounddevice")
    sd.PortAudioError = PortAudioError
    played = [0]   # shared by every stream opened: the room goes on while no one listens

    def query_devices(device=None, kind=None):
        if no_device:
            raise PortAudioError("Error querying device -1")
        return {"name": "fake mic", "default_samplerate": float(rate), "max_input_channels": channels}

    class InputStream:
        def __init__(self, samplerate, channels, dtype, blocksize, device):
            if busy:
                raise PortAudioError("Device unavailable [PaErrorCode -9985]")
            assert dtype == "float32"
            self.channels = channels
            if opened is not None:
                opened.append((samplerate, channels, device))

        def start(self):
            pass

        def stop(self):
            pass

        def close(self):
            pass

        def read(self, n):
            if played[0] >= len(signal):
                if interrupt:
                    raise KeyboardInterrupt
                return np.zeros((n, self.channels), np.float32), False
            x = signal[played[0]:played[0] + n]
            played[0] += n
            return np.tile(x[:, None], (1, self.channels)).astype(np.float32), False

    sd.query_devices, sd.InputStream = query_devices, InputStream
    return sd


@pytest.fixture(scope="module")
def talk():
    """44.1 kHz speech: the phrase twice among other words, and where the phrase is (seconds)."""
    utts = [(["bravo"], 120, 1.0), (["alpha", "delta"], 120, 1.0), (["omega", "bravo"], 120, 1.0),
            (["bravo", "alpha", "delta"], 120, 1.0), (["delta", "omega"], 120, 1.0)]
    y, truth = stream(utts, seed=7)
    return resample_poly(y, 441, 160).astype(np.float32), [(s, e) for s, e, w in truth if "alpha" in w]


def test_listen_prints_timed_detections_until_ctrl_c(talk, personal_profile, monkeypatch, capsys):
    y, truth = talk
    opened = []
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(y, interrupt=True, opened=opened))
    assert cli.main(["listen", str(personal_profile), "--json"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert opened == [(44100, 2, None)]   # the device's own rate and channels
    assert len(out) == 2 and all(d["phrase"] == "alpha-delta" and "time" in d for d in out)
    for d, (s, e) in zip(out, truth):
        assert s - 0.5 <= d["start_s"] and d["end_s"] <= e + 0.5


def test_listen_matches_detect_on_the_same_audio(talk, personal_profile, tmp_path, monkeypatch, capsys):
    import soundfile as sf
    y, _ = talk
    sf.write(tmp_path / "talk.wav", np.stack([y, y], 1), 44100)
    assert cli.main(["detect", str(personal_profile), str(tmp_path / "talk.wav"), "--json"]) == 0
    from_file = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(y))
    assert cli.main(["listen", str(personal_profile), "--json", "--seconds", f"{len(y) / 44100 + 1:.2f}"]) == 0
    live = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["start_s"], d["end_s"]) for d in live] == [(d["start_s"], d["end_s"]) for d in from_file]


@pytest.mark.parametrize("problem, message", [
    (dict(module=None), "pip install 'kws\\[mic\\]'"),
    (dict(no_device=True), "no input device"),
    (dict(busy=True), "another program using it"),
    (dict(channels=0), "no input channels"),
])
def test_listen_says_what_is_wrong(problem, message, personal_profile, monkeypatch, caplog):
    module = problem.pop("module", "fake")
    monkeypatch.setitem(sys.modules, "sounddevice",
                        None if module is None else fake_sounddevice(np.zeros(SR, np.float32), **problem))
    assert cli.main(["listen", str(personal_profile), "--seconds", "1"]) == 2
    assert any(__import__("re").search(message, r.getMessage()) for r in caplog.records), caplog.text


def test_missing_portaudio_is_a_clear_error(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_portaudio(name, *a, **k):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real(name, *a, **k)
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    with pytest.raises(KwsError, match="libportaudio2"):
        mic.sounddevice()


def test_microphone_blocks_are_16k_mono(monkeypatch):
    y = np.sin(np.arange(48000 * 2) / 48000 * 2 * np.pi * 440).astype(np.float32)
    got = np.concatenate(list(mic.microphone_blocks(0.5, seconds=2.0, sd=fake_sounddevice(y, rate=48000))))
    assert len(got) == 2 * SR
    assert np.allclose(got[SR // 2:SR], resample_poly(y, 1, 3)[SR // 2:SR], atol=1e-4)


def test_enroll_record_takes_with_a_report_after_each(tmp_path, monkeypatch, capsys):
    takes = [utterance(["alpha", "delta"], seed=i) for i in range(3)]
    pad = int(3.0 * 44100)
    signal = np.concatenate([np.pad(resample_poly(t, 441, 160), (0, pad))[:pad] for t in takes]).astype(np.float32)
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(signal))
    assert cli.main(["enroll", "--name", "hey", "--out", str(tmp_path / "me"), "--record", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("advice:") >= 4   # one report per take, and the final one
    assert "enrolled 'hey' from 3 take(s)" in out
    assert len(list((tmp_path / "me" / "hey" / "clips").glob("*.wav"))) == 3
