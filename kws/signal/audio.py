"""Reading and validating audio: any soundfile format in, float32 16 kHz mono out."""
from __future__ import annotations

import logging
import math
import os
import struct
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from kws import safefile
from kws.config import AudioConfig, SAMPLE_RATE
from kws.errors import AudioError

log = logging.getLogger(__name__)


def to_mono_16k(y: np.ndarray, sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Downmix (channels last) and resample with a polyphase filter."""
    if y.ndim == 2:
        y = y.mean(axis=1)
    y = np.asarray(y, dtype=np.float32)
    if sr != target_sr:
        from scipy.signal import resample_poly  # imported here: it costs ~1 s of start-up, rarely needed
        g = gcd(int(sr), int(target_sr))
        y = resample_poly(y, target_sr // g, int(sr) // g).astype(np.float32)
    return y


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    frames: int
    subtype: str        # e.g. PCM_16, PCM_U8, FLOAT

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def header_frames(path: Path) -> int | None:
    """The frame count a WAV header declares (libsndfile silently trims it to the bytes present, which
    hides a truncated file); None for other formats or a header that does not say."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, align = 12, 0
    while pos + 8 <= len(head):
        tag, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if tag == b"fmt " and pos + 22 <= len(head):
            align = struct.unpack("<H", head[pos + 20:pos + 22])[0]
        if tag == b"data":
            return size // align if align and 0 < size < 0xFFFFFFFF else None
        pos += 8 + size + (size & 1)
    return None


def warn_if_truncated(path: Path, rate: int, frames: int) -> None:
    declared = header_frames(path)
    if declared is not None and declared > frames:
        log.warning("%s: truncated: the header promises %.2f s, the file holds %.2f s; using what is there",
                    path, declared / rate, frames / rate)


def check_header(path: Path, rate: int, channels: int, cfg: AudioConfig = AudioConfig()) -> None:
    """Refuse header values no speech recording has (a damaged header): below min_rate, no channels."""
    if rate < cfg.min_rate or channels <= 0:
        raise AudioError(f"{path}: header gives {rate} Hz, {channels} channel(s); not a speech recording "
                         f"(at least {cfg.min_rate} Hz and one channel); re-record or re-export it")


READ_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError, ValueError)   # what soundfile raises on bad input


def unreadable(path: Path, e: Exception) -> AudioError:
    return AudioError(f"{path}: not readable as audio ({e}); expected a 16 kHz mono 16-bit WAV")


def open_audio(path: str | Path) -> sf.SoundFile:
    """The one way a sound file is opened (files, streams, quality checks): a SoundFile whose header
    passed check_header, or AudioError saying why not. Use it as a context manager."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: not a file")
    try:
        f = sf.SoundFile(os.fsencode(path))
    except READ_ERRORS as e:
        raise unreadable(path, e) from e
    try:
        check_header(path, f.samplerate, f.channels)
    except AudioError:
        f.close()
        raise
    return f


def probe(path: str | Path) -> AudioInfo:
    """What the file header says, or AudioError saying why it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes); re-record or re-copy it")
    with open_audio(path) as f:
        return AudioInfo(int(f.samplerate), int(f.channels), int(f.frames), str(f.subtype))


def read_audio(path: str | Path, cfg: AudioConfig = AudioConfig()) -> np.ndarray:
    """Return float32 mono samples at cfg.sample_rate, or raise AudioError saying why not."""
    path = Path(path)
    info = probe(path)
    frames = min(info.frames, int(cfg.max_seconds * info.sample_rate))
    try:
        y, sr = _read_mono(path, frames), info.sample_rate
    except READ_ERRORS as e:
        raise unreadable(path, e) from e
    warn_if_truncated(path, info.sample_rate, info.frames)
    if info.seconds > cfg.max_seconds:
        log.warning("%s: %.0f s long, only the first %.0f s are used", path, info.seconds, cfg.max_seconds)
    if y.shape[0] == 0:
        raise AudioError(f"{path}: contains no samples")
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{path}: contains NaN or infinite samples")
    if sr != cfg.sample_rate or info.channels != 1:
        log.info("%s: %d Hz, %d channel(s); converting to %d Hz mono", path, sr, info.channels, cfg.sample_rate)
    y = to_mono_16k(y, sr, cfg.sample_rate)
    if len(y) < cfg.min_seconds * cfg.sample_rate:
        raise AudioError(f"{path}: only {len(y) / cfg.sample_rate:.3f} s of audio; need at least {cfg.min_seconds} s")
    return y


def _read_mono(path: Path, frames: int, block: int = 1 << 16) -> np.ndarray:
    """Up to `frames` frames, downmixed block by block into one float32 array (no multi-channel copy)."""
    out = np.empty(frames, np.float32)
    n = 0
    with open_audio(path) as f:
        while n < frames and len(x := f.read(min(block, frames - n), dtype="float32", always_2d=True)):
            out[n:n + len(x)] = x.mean(axis=1)
            n += len(x)
    return out[:n]


def audio_seconds(path: str | Path) -> float:
    """Duration from the file header (no decoding); 0 for anything unreadable."""
    try:
        return probe(path).seconds
    except (AudioError, OSError):
        return 0.0


def write_wav(path: str | Path, y: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """16-bit PCM WAV, the platform's format."""
    sf.write(str(path), np.clip(y, -1.0, 1.0), sr, subtype="PCM_16")


def list_wavs(folder: str | Path) -> list[Path]:
    """The .wav files of a folder, sorted by name (kws.safefile owns the rule); AudioError if not a directory."""
    try:
        return safefile.list_wavs(folder)
    except NotADirectoryError as e:
        raise AudioError(str(e)) from e


class Resampler:
    """Block-by-block polyphase resampling that equals resampling the whole signal at once.

    Each call resamples the unconsumed input with `context` samples either side and keeps only
    the middle, so block edges leave no trace; the last `context` input samples wait for the next call.
    """

    def __init__(self, sr_in: int, sr_out: int = SAMPLE_RATE):
        g = math.gcd(int(sr_in), int(sr_out))
        self.up, self.down = int(sr_out) // g, int(sr_in) // g
        half = math.ceil(10 * max(self.up, self.down) / self.up) + 1   # resample_poly's filter, in input samples
        self.context = -(-half // self.down) * self.down   # whole multiples of down: cuts fall on output samples
        self.buf = np.zeros(0, np.float32)
        self.buf_start = 0   # input index of buf[0]
        self.done = 0        # input index up to which output was returned

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self.up == self.down:
            return x
        from scipy.signal import resample_poly  # as in read_audio: costs start-up time, rarely needed
        self.buf = np.concatenate([self.buf, x])
        end = self.buf_start + len(self.buf)
        upto = end if last else (end - self.context) // self.down * self.down
        if upto <= self.done:
            return np.zeros(0, np.float32)
        y = resample_poly(self.buf, self.up, self.down)
        a = (self.done - self.buf_start) * self.up // self.down
        b = len(y) if last else (upto - self.buf_start) * self.up // self.down
        keep = max(self.buf_start, upto - self.context)
        self.buf, self.buf_start, self.done = self.buf[keep - self.buf_start:], keep, upto
        return y[a:b].astype(np.float32)
