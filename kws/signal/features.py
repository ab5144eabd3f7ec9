"""Cepstral frames for template matching, and the mel power spectrogram the GE2E encoder expects.

Pure numpy: predict never imports torch (it costs ~1.3 s and ~500 MB per process). The mel
filterbank and STFT reproduce torchaudio's MelSpectrogram (tests/test_features.py checks it).
"""
from __future__ import annotations

from collections import deque
from functools import lru_cache
from typing import Iterator

import numpy as np

from kws.config import GSE_FRAME_S, SAMPLE_RATE, FeatureConfig

# Frames per STFT pass: 82 s of audio (every platform clip in one pass); a 15-minute clip then needs
# ~30 MB at a time instead of ~600 MB.
STFT_CHUNK = 8192


def _hz_to_mel(f: np.ndarray, slaney: bool) -> np.ndarray:
    if not slaney:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    # Slaney: linear below 1 kHz, logarithmic above.
    lin = f / (200.0 / 3)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), lin)


def _mel_to_hz(m: np.ndarray, slaney: bool) -> np.ndarray:
    if not slaney:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


@lru_cache(maxsize=8)
def mel_filterbank(n_fft: int, n_mels: int, f_min: float, f_max: float, slaney: bool) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangular filters, as torchaudio.functional.melscale_fbanks builds them."""
    freqs = np.linspace(0, SAMPLE_RATE // 2, n_fft // 2 + 1)
    m = np.linspace(_hz_to_mel(np.array(f_min), slaney), _hz_to_mel(np.array(f_max), slaney), n_mels + 2)
    f_pts = _mel_to_hz(m, slaney)
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - freqs[:, None]
    fb = np.maximum(0.0, np.minimum(-slopes[:, :-2] / f_diff[:-1], slopes[:, 2:] / f_diff[1:]))
    if slaney:  # equal-area filters
        fb *= 2.0 / (f_pts[2:n_mels + 2] - f_pts[:n_mels])
    return fb.astype(np.float32)


@lru_cache(maxsize=4)
def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)  # periodic, as torch's default


def _power_chunks(y: np.ndarray, win: int, hop: int) -> Iterator[np.ndarray]:
    """|STFT|^2 of centred, reflect-padded frames, STFT_CHUNK frames at a time; each chunk pads only its
    own stretch of samples, so a long clip is never copied whole."""
    y = np.asarray(y, np.float32)
    pad = win // 2
    if len(y) <= pad:  # reflect padding needs more samples than the pad; repeat the edge instead
        y = np.pad(y, (pad, pad), mode="edge" if len(y) else "constant")
        left = right = np.zeros(0, np.float32)
    else:
        left, right = y[1:pad + 1][::-1], y[-pad - 1:-1][::-1]   # what mode="reflect" adds
    total = len(left) + len(y) + len(right)
    n = 1 + (total - win) // hop
    for a in range(0, n, STFT_CHUNK):   # each frame's FFT is its own: chunks change nothing but memory
        start, stop = a * hop, (min(a + STFT_CHUNK, n) - 1) * hop + win   # in padded samples
        piece = np.concatenate([left[start:stop], y[max(0, start - len(left)):max(0, stop - len(left))],
                                right[max(0, start - len(left) - len(y)):max(0, stop - len(left) - len(y))]])
        yield _framed_power(piece, win, hop)


def framed_spectrum(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """(k, win // 2 + 1) FFT of every whole Hann-windowed frame of x, frames hop apart from x[0] (no padding)."""
    k = max(0, 1 + (len(x) - win) // hop)
    frames = np.lib.stride_tricks.as_strided(x, (k, win), (x.strides[0] * hop, x.strides[0]))
    return np.fft.rfft(frames * _hann(win), axis=1)


def _framed_power(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """|FFT|^2 of every whole Hann-windowed frame of x (framed_spectrum)."""
    spec = framed_spectrum(x, win, hop)
    return (spec.real ** 2 + spec.imag ** 2).astype(np.float32)


def power_spectrogram(y: np.ndarray, win: int, hop: int) -> np.ndarray:
    """(T, win // 2 + 1) |STFT|^2 with centred, reflect-padded frames (n_fft = win)."""
    return np.concatenate(list(_power_chunks(y, win, hop)))


def mel_power(y: np.ndarray, n_mels: int, win: int, hop: int, f_min: float = 0.0,
              f_max: float | None = None, slaney: bool = False) -> np.ndarray:
    """(T, n_mels) mel power spectrogram, computed STFT_CHUNK frames at a time (bounded memory)."""
    f_max = f_max if f_max is not None else SAMPLE_RATE / 2
    fb = mel_filterbank(win, n_mels, float(f_min), float(f_max), slaney)
    return np.concatenate([p @ fb for p in _power_chunks(y, win, hop)])


def mel_frames(y: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """(T, n_mels) mel power frames at cfg.hop_ms: what logmel takes the log of."""
    win, hop = int(SAMPLE_RATE * cfg.win_ms / 1000), int(SAMPLE_RATE * cfg.hop_ms / 1000)
    return mel_power(y, cfg.n_mels, win, hop, cfg.f_min, cfg.f_max)


def floor_subtracted(m: np.ndarray, medium: int = 2, rise: float = 0.999, fall: float = 0.5, keep: float = 0.1,
                     bands: int = 4) -> np.ndarray:
    """Mel power with each band's noise floor taken out: PNCC's asymmetric noise suppression, without its
    temporal masking (Kim and Stern, 2016). The medium-time power (+-medium frames) less a floor track that
    falls fast and rises slowly (started at the clip's 10th percentile), kept at least `keep` x the floor,
    is applied to the power as a gain smoothed over +-bands bands. Stationary noise then sits near `keep`
    of its level under every clip, as clean silence does, while speech above it keeps its shape."""
    m = m.astype(np.float64) + 1e-10
    if len(m) == 0:
        return m.astype(np.float32)
    pad = np.concatenate([np.repeat(m[:1], medium, 0), m, np.repeat(m[-1:], medium, 0)])
    c = np.cumsum(np.concatenate([np.zeros((1, m.shape[1])), pad]), axis=0)
    q = (c[2 * medium + 1:] - c[:-2 * medium - 1]) / (2 * medium + 1)
    floor, track = np.empty_like(q), np.percentile(q, 10, axis=0)
    for t in range(len(q)):   # recursive: one step a frame (a 2 s span: ~1.5 ms)
        track = np.where(q[t] >= track, rise * track + (1 - rise) * q[t], fall * track + (1 - fall) * q[t])
        floor[t] = track
    gain = np.maximum(q - floor, keep * floor) / q
    k = np.ones(2 * bands + 1)
    smooth = np.stack([np.convolve(g, k, "same") for g in gain]) / np.convolve(np.ones(m.shape[1]), k, "same")
    return (m * smooth).astype(np.float32)


def logmel(y: np.ndarray, cfg: FeatureConfig = FeatureConfig(), added: np.ndarray | None = None,
           floor_out: bool = False) -> np.ndarray:
    """(T, n_mels) log-mel frames at cfg.hop_ms, floored relative to the clip's loudest band energy.

    added: a mel power spectrum (n_mels,) added to every frame first, the expected power of a noise
    mixed in (|S + N|^2 averages |S|^2 + |N|^2) without the randomness of one noise recording.
    floor_out: each band's noise floor taken out first (floor_subtracted; the "mfcc-ns" front end)."""
    m = mel_frames(y, cfg)
    if added is not None:
        m = m + added[None, :].astype(np.float32)
    if floor_out:
        m = floor_subtracted(m)
    return np.log(m + float(m.max(initial=0.0)) * cfg.relative_floor + 1e-10).astype(np.float32)


@lru_cache(maxsize=4)
def _dct(n_mels: int, n_ceps: int) -> np.ndarray:
    """(n_mels, n_ceps) orthonormal DCT-II matrix (torchaudio.functional.create_dct, norm 'ortho')."""
    k, n = np.arange(n_ceps)[None, :], np.arange(n_mels)[:, None]
    d = np.cos(np.pi / n_mels * (n + 0.5) * k) * np.sqrt(2.0 / n_mels)
    d[:, 0] /= np.sqrt(2.0)
    return d.astype(np.float32)


def _moving_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Centred moving average over w frames, edges extended (scipy.ndimage.uniform_filter1d, mode 'nearest')."""
    padded = np.concatenate([np.repeat(x[:1], w // 2, axis=0), x, np.repeat(x[-1:], (w - 1) // 2, axis=0)])
    c = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(padded, axis=0, dtype=np.float64)])
    return (c[w:] - c[:-w]) / w


def cmvn(frames: np.ndarray, window: int = 0) -> np.ndarray:
    """Mean and variance normalisation per dimension: over the whole clip, or a sliding window."""
    if window <= 0:
        return (frames - frames.mean(axis=0)) / (frames.std(axis=0) + 1e-3)
    mu = _moving_mean(frames, window)
    var = _moving_mean(frames.astype(np.float64) ** 2, window) - mu ** 2
    return ((frames - mu) / (np.sqrt(np.maximum(var, 0.0)) + 1e-3)).astype(np.float32)


def stack(frames: np.ndarray, k: int) -> np.ndarray:
    """Average k consecutive frames (k=1: unchanged)."""
    if k <= 1:
        return frames
    t = len(frames) // k * k
    if t == 0:
        return frames.mean(axis=0, keepdims=True)
    return frames[:t].reshape(t // k, k, -1).mean(axis=1)


def frames_per_second(cfg: FeatureConfig = FeatureConfig()) -> float:
    """Keyword frames per second of the front end: stacked 10 ms frames, or speech_embedding's 80 ms ones."""
    return 1.0 / GSE_FRAME_S if cfg.frontend == "gse" else 1000.0 / (cfg.hop_ms * cfg.stack)


def mfcc(y: np.ndarray, cfg: FeatureConfig = FeatureConfig(), added: np.ndarray | None = None,
         floor_out: bool = False) -> np.ndarray:
    """(T, n_ceps - 1) cepstra 1.. of the floored log-mel (c0, the level, dropped); added, floor_out: see logmel."""
    return logmel(y, cfg, added, floor_out) @ _dct(cfg.n_mels, cfg.n_ceps)[:, 1:]


def encoder_input(y: np.ndarray, cfg: FeatureConfig = FeatureConfig(), added: np.ndarray | None = None) -> np.ndarray:
    """(T, n_mels) log-mel with sliding CMVN: what the multi-task encoder reads; added: see logmel."""
    return cmvn(logmel(y, cfg, added), cfg.cmvn_frames)


def mfcc_frames(y: np.ndarray, cfg: FeatureConfig = FeatureConfig(), added: np.ndarray | None = None,
                floor_out: bool = False) -> np.ndarray:
    """MFCC template-matching frames of a speech crop: sliding CMVN, stacked (the "mfcc" front end; with
    floor_out, "mfcc-ns")."""
    return stack(cmvn(mfcc(y, cfg, added, floor_out), cfg.cmvn_frames), cfg.stack).astype(np.float32)


PEAK_CHUNK = 16   # frames per step of a stream's running peak


class KeywordFrameStream:
    """The MFCC keyword frames of a stream, hop by hop, as mfcc_frames computes them on a clip.

    Each frame's sliding CMVN window reaches cmvn_frames // 2 frames ahead, so the newest frames are
    only provisional: push() returns the columns that are final and, after them, the ones a clip ending
    now would have (its edge repeated, as mfcc_frames does at a clip's end). The log-mel floor is taken
    under the loudest band energy of the last peak_window_s, not of a whole clip. Memory: a few seconds.
    """

    def __init__(self, cfg: FeatureConfig = FeatureConfig(), peak_window_s: float = 10.0, commit_after: int | None = None):
        self.cfg = cfg
        # Frames are final once this many frames follow them (default: the whole CMVN window's reach); fewer
        # makes the columns approximate (their window's far end repeats the newest frame) and cheaper to follow.
        self.commit_after = (cfg.cmvn_frames - 1) // 2 if commit_after is None else commit_after
        self.win, self.hop = int(SAMPLE_RATE * cfg.win_ms / 1000), int(SAMPLE_RATE * cfg.hop_ms / 1000)
        self.before, self.after = cfg.cmvn_frames // 2, (cfg.cmvn_frames - 1) // 2
        self.samples = np.zeros(0, np.float32)      # not yet framed (the last win - hop samples overlap)
        self.started = False
        self.raw = np.zeros((0, cfg.n_ceps - 1), np.float32)   # cepstra before CMVN, newest last
        self.n_raw = 0                              # raw frames made so far
        self.peaks: deque[float] = deque(maxlen=max(1, int(peak_window_s * 1000 / cfg.hop_ms / PEAK_CHUNK)))
        self.chunk_peak = 0.0
        self.columns = 0                            # final columns returned so far
        self.fb = mel_filterbank(self.win, cfg.n_mels, float(cfg.f_min), float(cfg.f_max), False)

    def _raw_frames(self, y: np.ndarray) -> None:
        if not self.started:   # the reflect padding a clip gets at its start
            if len(self.samples) + len(y) <= self.win // 2:
                self.samples = np.concatenate([self.samples, y])
                return
            y = np.concatenate([self.samples, y])
            self.samples = y[1:self.win // 2 + 1][::-1].copy()
            self.started = True
        x = np.concatenate([self.samples, y])
        k = max(0, 1 + (len(x) - self.win) // self.hop)
        if k == 0:
            self.samples = x
            return
        mel = _framed_power(x, self.win, self.hop) @ self.fb
        self.samples = x[k * self.hop:]
        # The running peak: each frame's floor is under the loudest frame of the completed PEAK_CHUNK-frame
        # chunks of the last peak_window_s and of its own chunk so far (chunks counted from the stream's start,
        # so how the stream is cut into pushes changes nothing).
        frame_peak = mel.max(axis=1, initial=0.0)
        idx = self.n_raw + np.arange(k)
        floor = np.empty(k, np.float32)
        a = 0
        while a < k:   # chunk by chunk
            if idx[a] % PEAK_CHUNK == 0 and idx[a] > 0:
                self.peaks.append(self.chunk_peak)
                self.chunk_peak = 0.0
            b = min(k, a + PEAK_CHUNK - idx[a] % PEAK_CHUNK)   # the rest of this chunk
            run = np.maximum.accumulate(frame_peak[a:b])
            floor[a:b] = np.maximum(np.maximum(run, self.chunk_peak), max(self.peaks, default=0.0))
            self.chunk_peak = max(self.chunk_peak, float(run[-1]))
            a = b
        logm = np.log(mel + floor[:, None] * self.cfg.relative_floor + 1e-10)
        ceps = (logm @ _dct(self.cfg.n_mels, self.cfg.n_ceps)[:, 1:]).astype(np.float32)
        self.raw = np.concatenate([self.raw, ceps])
        self.n_raw += k

    def _normalised(self, a: int, b: int) -> np.ndarray:
        """CMVN frames a..b-1 (stream frame indices), frames past the newest repeating it: cmvn() over
        the frames their windows reach (the stream's first and newest frame extended, as a clip's edges)."""
        first = self.n_raw - len(self.raw)
        idx = np.clip(np.arange(a - self.before, b + self.after), 0, self.n_raw - 1) - first
        return cmvn(self.raw[idx], self.cfg.cmvn_frames)[self.before:self.before + b - a]

    def push(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(final columns, provisional columns after them) once y is added."""
        self._raw_frames(np.asarray(y, np.float32))
        k = self.cfg.stack
        n_final = max(0, self.n_raw - self.commit_after) // k
        a, b = self.columns * k, self.n_raw // k * k
        cols = stack(self._normalised(a, b), k) if b > a else np.zeros((0, self.raw.shape[1]), np.float32)
        cut = max(0, n_final - self.columns)
        final, rest = cols[:cut], cols[cut:]
        self.columns += cut
        # Keep only the raw frames the next columns' CMVN windows reach back to.
        keep = self.n_raw - max(0, min(self.columns * k - self.before, self.n_raw - 1))
        self.raw = self.raw[-keep:]
        return final.astype(np.float32), rest.astype(np.float32)
