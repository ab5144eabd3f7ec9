"""Speech segments with webrtcvad, guarded by an energy floor so that quiet hiss is never speech."""
from __future__ import annotations

import numpy as np
import webrtcvad

from kws.config import SAMPLE_RATE, VadConfig

Segment = tuple[int, int]  # [start, end) in samples
CHUNK = 4096               # VAD frames per pass (2 minutes of audio)


def frame_samples(cfg: VadConfig, sr: int = SAMPLE_RATE) -> int:
    """Samples per VAD frame."""
    return sr * cfg.frame_ms // 1000


def frame_db(frames: np.ndarray) -> np.ndarray:
    """Mean-square level (dBFS) of each row of (n_frames, frame_samples) samples."""
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def loud_enough(db: np.ndarray | float, peak_db: float, cfg: VadConfig) -> np.ndarray | bool:
    """The energy half of the frame rule, for files and streams alike: above the absolute floor and
    within relative_floor_db of the loudest frame (of the clip, or of a stream's recent past)."""
    return (db > cfg.energy_floor_db) & (db > peak_db - cfg.relative_floor_db)


def pcm16(frames: np.ndarray) -> np.ndarray:
    """Float samples as the 16-bit PCM webrtcvad reads."""
    return (np.clip(frames, -1, 1) * 32767).astype("<i2")


def frame_decisions(y: np.ndarray, cfg: VadConfig = VadConfig(), sr: int = SAMPLE_RATE) -> np.ndarray:
    """One bool per cfg.frame_ms frame: webrtcvad says speech and the frame is loud enough."""
    n = frame_samples(cfg, sr)
    count = len(y) // n
    if count == 0:
        return np.zeros(0, dtype=bool)
    frames = y[: count * n].reshape(count, n)
    # In chunks of CHUNK frames (each frame's value is its own): a long clip never needs float64 copies of it all.
    db = np.concatenate([frame_db(frames[a:a + CHUNK]) for a in range(0, count, CHUNK)])
    loud = loud_enough(db, db.max(), cfg)
    vad = webrtcvad.Vad(cfg.aggressiveness)
    voiced = np.zeros(count, bool)
    step = 2 * n
    for a in range(0, count, CHUNK):
        pcm = pcm16(frames[a:a + CHUNK]).tobytes()
        voiced[a:a + CHUNK] = [vad.is_speech(pcm[i * step:(i + 1) * step], sr) for i in range(len(pcm) // step)]
    return voiced & loud


def speech_segments(y: np.ndarray, cfg: VadConfig = VadConfig(), sr: int = SAMPLE_RATE) -> list[Segment]:
    """Speech runs, short gaps bridged, blips dropped, padded, in samples."""
    return segments_of(frame_decisions(y, cfg, sr), cfg, len(y), sr=sr)


def segments_of(dec: np.ndarray, cfg: VadConfig, n_samples: int, pad_ms: int | None = None,
                sr: int = SAMPLE_RATE) -> list[Segment]:
    """speech_segments from frame decisions already made (pad_ms: instead of cfg.pad_ms)."""
    n = frame_samples(cfg, sr)
    runs: list[list[int]] = []
    for i in np.flatnonzero(dec):
        if runs and (i - runs[-1][1]) * cfg.frame_ms <= cfg.merge_gap_ms:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    pad = sr * (cfg.pad_ms if pad_ms is None else pad_ms) // 1000
    out = []
    for a, b in runs:
        if (b - a) * cfg.frame_ms >= cfg.min_speech_ms:
            out.append((max(0, a * n - pad), min(n_samples, b * n + pad)))
    return out



class StreamVad:
    """frame_decisions' rule over a stream, frame by frame: webrtcvad, the absolute energy floor, and the
    relative one under the loudest frame of the last peak_window_s (not of a whole clip)."""

    def __init__(self, cfg: VadConfig = VadConfig(), peak_window_s: float = 10.0):
        self.cfg, self.n = cfg, frame_samples(cfg)
        self.vad = webrtcvad.Vad(cfg.aggressiveness)
        self.recent = np.full(max(1, int(peak_window_s * 1000 / cfg.frame_ms)), -np.inf)   # a ring of frame levels
        self.count = 0                            # frames so far
        self.partial = np.zeros(0, np.float32)   # samples short of a whole frame

    def push(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(variance of each new whole frame, whether it is speech, the frames' samples)."""
        x = np.concatenate([self.partial, np.asarray(y, np.float32)])
        count = len(x) // self.n
        self.partial = x[count * self.n:]
        frames = x[:count * self.n].reshape(count, self.n)
        db, pcm = frame_db(frames), pcm16(frames)
        speech = np.zeros(count, bool)
        for k in range(count):
            self.recent[self.count % len(self.recent)] = db[k]
            self.count += 1
            speech[k] = bool(loud_enough(db[k], self.recent.max(), self.cfg)) and \
                self.vad.is_speech(pcm[k].tobytes(), SAMPLE_RATE)
        return frames.astype(np.float64).var(axis=1) if count else np.zeros(0), speech, frames
