"""Live input from the default (or a named) input device through sounddevice (PortAudio).

    microphone_blocks  the device at its own rate and channel count -> 16 kHz mono float32 blocks
    record_take        one enrollment take of a fixed length

sounddevice is imported on first use (the [mic] extra), so nothing else in kws needs it or
PortAudio; every way of failing (not installed, no PortAudio, no device, device busy) is a
MicError that says what to do.
"""
from __future__ import annotations

import logging
import time
from typing import Iterator

import numpy as np

from kws.config import SAMPLE_RATE
from kws.errors import KwsError
from kws.signal.audio import Resampler

log = logging.getLogger(__name__)


class MicError(KwsError, RuntimeError):
    """No usable input device."""


def sounddevice():
    """The sounddevice module, or a MicError saying how to get it."""
    try:
        import sounddevice as sd
    except ImportError as e:
        raise MicError("live input needs the sounddevice package: pip install 'kws[mic]' "
                       "(or .venv/bin/pip install sounddevice)") from e
    except OSError as e:   # the wheel is there but the PortAudio library is not
        raise MicError(f"sounddevice cannot load PortAudio ({e}): apt-get install libportaudio2") from e
    return sd


def input_device(sd, device: int | str | None = None) -> dict:
    """The device's description (name, default_samplerate, max_input_channels), or a MicError."""
    try:
        info = sd.query_devices(device, "input")
    except (ValueError, sd.PortAudioError) as e:
        raise MicError(f"no input device{'' if device is None else f' {device!r}'} ({e}); plug in a microphone, "
                       "or pick one with --device (python -m sounddevice lists them)") from e
    if int(info.get("max_input_channels", 0)) < 1:
        raise MicError(f"device {info.get('name', device)!r} has no input channels; pick another with --device")
    return info


def microphone_blocks(block_s: float = 0.5, device: int | str | None = None, seconds: float | None = None,
                      sd=None) -> Iterator[np.ndarray]:
    """16 kHz mono blocks from the input device as they arrive, for `seconds` (None: until interrupted).

    Opened at the device's own default rate and all its input channels (up to 2), which every
    device accepts; downmixed and resampled here, so the detector sees what a file would give."""
    sd = sd or sounddevice()
    info = input_device(sd, device)
    rate = int(round(float(info["default_samplerate"])))
    channels = min(int(info["max_input_channels"]), 2)
    n = max(1, int(block_s * rate))
    try:
        stream = sd.InputStream(samplerate=rate, channels=channels, dtype="float32", blocksize=n, device=device)
        stream.start()
    except (sd.PortAudioError, ValueError) as e:
        raise MicError(f"cannot open {info.get('name', 'the input device')!r} at {rate} Hz, {channels} channel(s) "
                       f"({e}); is another program using it?") from e
    log.info("listening on %r: %d Hz, %d channel(s)%s", info.get("name", "?"), rate, channels,
             "" if rate == SAMPLE_RATE else f", resampled to {SAMPLE_RATE} Hz")
    resample, read, total = Resampler(rate), 0, None if seconds is None else int(seconds * rate)
    try:
        while total is None or read < total:
            want = n if total is None else min(n, total - read)
            try:
                x, overflowed = stream.read(want)
            except sd.PortAudioError as e:
                raise MicError(f"the input device stopped ({e}); was it unplugged?") from e
            if overflowed:
                log.warning("input overflow at %.1f s: audio was lost (the machine is too busy)", read / rate)
            x = np.asarray(x, np.float32).reshape(len(x), -1)
            read += len(x)
            yield resample(x.mean(axis=1))
        if len(tail := resample(np.zeros(0, np.float32), last=True)):
            yield tail
    finally:
        stream.stop()
        stream.close()


def record_take(seconds: float, device: int | str | None = None, sd=None) -> np.ndarray:
    """One take: `seconds` of 16 kHz mono audio from the input device."""
    t0 = time.monotonic()
    y = np.concatenate(list(microphone_blocks(0.1, device, seconds, sd)) or [np.zeros(0, np.float32)])
    log.debug("recorded %.2f s in %.2f s", len(y) / SAMPLE_RATE, time.monotonic() - t0)
    return y
