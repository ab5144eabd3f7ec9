"""Streaming detection over a recording of any length: audio blocks in, time-stamped detections out.

    read_blocks     file -> 16 kHz mono blocks (never the whole file)
    SpeechWindows   webrtcvad frame by frame -> speech regions -> windows of at most window_s
    StreamDetector  windows scored in small batches by detect.score_and_locate for each phrase,
                    fused and thresholded by the calibration, one detection per utterance

Memory is bounded: the sample buffer holds the last few seconds, at most max_batch windows wait
to be scored, and nothing else grows with the length of the stream.
"""
from __future__ import annotations

import collections
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import webrtcvad

from kws.scoring.calibrate import Calibration
from kws.signal.audio import open_audio, warn_if_truncated
from kws.scoring.cohort import load_cohort
from kws.config import SAMPLE_RATE, Config, StreamConfig
from kws.scoring.detect import Prepared, score_and_locate
from kws.errors import AudioError, KwsError
from kws.nn.encoder import keyword_frames
from kws.signal.features import frames_per_second
from kws.scoring.profile import SpeakerProfile
from kws.signal.vad import frame_db, frame_samples, loud_enough, pcm16

log = logging.getLogger(__name__)

SENSITIVITY = {"fewest-false-alarms": 0.0, "balanced": 0.5, "fewest-misses": 1.0}


def threshold_offset(sensitivity: str | float, cfg: StreamConfig = StreamConfig()) -> float:
    """What --sensitivity adds to the calibrated threshold: +span (0, fewest false alarms), 0 (0.5,
    balanced: the calibrated threshold itself), -span (1, fewest misses); linear in between."""
    s = SENSITIVITY.get(sensitivity, sensitivity) if isinstance(sensitivity, str) else sensitivity
    try:
        s = float(s)
    except (TypeError, ValueError):
        s = math.nan
    if not 0.0 <= s <= 1.0:
        raise KwsError(f"sensitivity {sensitivity!r}: use {', '.join(SENSITIVITY)} or a number from 0 to 1")
    return cfg.sensitivity_span * (1.0 - 2.0 * s)


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
        from scipy.signal import resample_poly  # as in audio.py: costs start-up time, rarely needed
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


def read_blocks(path: str | Path, block_s: float = StreamConfig.block_s) -> Iterator[np.ndarray]:
    """16 kHz mono float32 blocks of any file soundfile reads, read block by block."""
    path = Path(path)
    with open_audio(path) as f:
        if f.samplerate != SAMPLE_RATE or f.channels != 1:
            log.info("%s: %d Hz, %d channel(s); converting to %d Hz mono as it streams",
                     path, f.samplerate, f.channels, SAMPLE_RATE)
        resample, n, read = Resampler(f.samplerate), max(1, int(block_s * f.samplerate)), 0
        while len(x := f.read(n, dtype="float32", always_2d=True)):
            if not np.all(np.isfinite(x)):
                # One bad block must not end the scan: it is heard as silence, and said so.
                log.warning("%s: NaN or infinite samples at %.1f s; that block is treated as silence",
                            path, read / f.samplerate)
                x = np.where(np.isfinite(x), x, 0.0).astype(np.float32)
            read += len(x)
            yield resample(x.mean(axis=1))
        if read == 0:
            raise AudioError(f"{path}: contains no samples")
        warn_if_truncated(path, f.samplerate, read)
        if len(tail := resample(np.zeros(0, np.float32), last=True)):
            yield tail


class SampleBuffer:
    """The last `capacity` samples of a stream, addressed by their index in the stream."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.data = np.zeros(0, np.float32)
        self.end = 0   # stream index one past the newest sample

    @property
    def start(self) -> int:
        return self.end - len(self.data)

    def append(self, y: np.ndarray) -> None:
        self.data = np.concatenate([self.data, y])[-self.capacity:]
        self.end += len(y)

    def get(self, a: int, b: int) -> np.ndarray:
        assert self.start <= a <= b <= self.end, "window outside the buffer: capacity too small"
        return self.data[a - self.start:b - self.start].copy()


@dataclass(frozen=True)
class Window:
    start: int           # first sample, as a stream index
    audio: np.ndarray

    @property
    def end(self) -> int:
        return self.start + len(self.audio)


class SpeechWindows:
    """Webrtcvad frame by frame over a stream; returns padded speech windows of at most window_s.

    vad.speech_segments' rules made causal: pauses up to join_gap_s join a region (so the words of a
    phrase stay together), regions shorter than min_speech_ms are dropped, pad_ms of context either
    side, and the relative energy floor is taken under the loudest frame of the last peak_window_s
    (not of the whole clip). A region longer than window_s is cut into windows overlapping by
    window_overlap_s, so a phrase is whole in at least one.
    """

    def __init__(self, cfg: Config = Config()):
        v, s = cfg.vad, cfg.stream
        self.cfg = v
        self.n = frame_samples(v)
        self.vad = webrtcvad.Vad(v.aggressiveness)
        self.recent_db: collections.deque[float] = collections.deque(maxlen=int(s.peak_window_s * 1000 / v.frame_ms))
        self.pad = SAMPLE_RATE * v.pad_ms // 1000
        self.gap = int(max(v.merge_gap_ms, 1000 * s.join_gap_s)) // v.frame_ms
        self.min_frames = math.ceil(v.min_speech_ms / v.frame_ms)
        self.win = int(s.window_s * SAMPLE_RATE)
        self.hop = self.win - int(s.window_overlap_s * SAMPLE_RATE)
        # A window spans at most win + pad and ends at most gap + 2 frames, a pad and a block before the newest sample.
        lag = (self.gap + 2) * self.n + self.pad + int(s.block_s * SAMPLE_RATE)
        self.buffer = SampleBuffer(self.win + 2 * self.pad + lag)
        self.partial = np.zeros(0, np.float32)   # samples short of a whole VAD frame
        self.frame = 0                            # index of the next VAD frame
        self.run: list[int] | None = None         # open region: [first, one past the last] speech frame
        self.next_start = 0                       # first sample of the open region's next window
        self.last_end = -1                        # end of the open region's last window (-1: none yet)

    def feed(self, y: np.ndarray) -> list[Window]:
        self.buffer.append(y)
        x = np.concatenate([self.partial, y])
        count = len(x) // self.n
        self.partial = x[count * self.n:]
        frames = x[:count * self.n].reshape(count, self.n)
        db = frame_db(frames)
        pcm = pcm16(frames)
        out: list[Window] = []
        for k in range(count):
            self.recent_db.append(db[k])
            # vad's frame rule, with the peak of the recent past instead of the whole clip's
            loud = bool(loud_enough(db[k], max(self.recent_db), self.cfg))
            out += self._step(loud and self.vad.is_speech(pcm[k].tobytes(), SAMPLE_RATE))
            self.frame += 1
        return out

    def flush(self) -> list[Window]:
        """Close the region still open at the end of the stream."""
        return self._close() if self.run else []

    def _step(self, speech: bool) -> list[Window]:
        i, out = self.frame, []
        if speech:
            if self.run is None:
                self.run = [i, i + 1]
                self.next_start, self.last_end = max(0, i * self.n - self.pad), -1
            else:
                self.run[1] = i + 1
        elif self.run and i + 1 - self.run[1] > self.gap:
            return self._close()
        # Long speech: emit each full window as soon as the speech has run past its end.
        while self.run and self.run[1] * self.n + self.pad >= self.next_start + self.win \
                and self.next_start + self.win <= self.buffer.end:
            out.append(Window(self.next_start, self.buffer.get(self.next_start, self.next_start + self.win)))
            self.last_end = self.next_start + self.win
            self.next_start += self.hop
        return out

    def _close(self) -> list[Window]:
        a, b = self.run
        self.run = None
        if b - a < self.min_frames:
            return []
        end = min(b * self.n + self.pad, self.buffer.end)
        if end <= self.last_end:   # already inside the last window
            return []
        start = max(a * self.n - self.pad, end - self.win, 0)
        return [Window(start, self.buffer.get(start, end))]


@dataclass(frozen=True)
class Detection:
    phrase: str
    start_s: float           # the matched segment, in seconds from the start of the stream
    end_s: float
    fused: float             # calibrated score
    threshold: float         # what it had to beat: calibrated threshold + sensitivity offset
    decided_s: float         # stream position when decided (decided_s - end_s: latency in stream time)
    scores: dict[str, float]  # every named score of detect.SCORE_NAMES

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()} | {
            "scores": {k: round(v, 4) for k, v in self.scores.items()}}


def clock(seconds: float) -> str:
    """h:mm:ss.ss, readable for long recordings."""
    m, s = divmod(seconds, 60)
    return f"{int(m // 60)}:{int(m % 60):02d}:{s:05.2f}"


def format_detection(d: Detection) -> str:
    """One line per detection: when, which phrase, the calibrated score and its two main parts."""
    kw, spk = d.scores.get("kw_z", math.nan), d.scores.get("spk_seg_z", math.nan)
    return (f"{clock(d.start_s)} - {clock(d.end_s)}  {d.phrase}  fused {d.fused:.2f} (threshold {d.threshold:.2f})  "
            f"keyword kw_z {kw:.2f}  speaker spk_seg_z {spk:.2f}")


class StreamDetector:
    """Feed 16 kHz mono blocks, get Detections: the best phrase per window, one per utterance."""

    def __init__(self, phrases: dict[str, SpeakerProfile], calibration: Calibration, offset: float = 0.0,
                 cfg: Config = Config()):
        if not phrases:
            raise KwsError("no phrase to detect: the profile is empty")
        self.phrases, self.calibration, self.cfg = phrases, calibration, cfg
        self.threshold = calibration.threshold + offset
        self.windows = SpeechWindows(cfg)
        self.cohort = load_cohort(cfg=cfg.features, voiceprint=cfg.detect.voiceprint)
        self.pending: list[Window] = []
        self.last_end_s = -math.inf
        self.step = SAMPLE_RATE / frames_per_second(cfg.features)   # samples per keyword frame

    @property
    def seconds(self) -> float:
        """Audio consumed so far."""
        return self.windows.buffer.end / SAMPLE_RATE

    def feed(self, y: np.ndarray) -> list[Detection]:
        self.pending += self.windows.feed(y)
        s = self.cfg.stream
        waited = (self.windows.buffer.end - self.pending[0].end) / SAMPLE_RATE if self.pending else 0.0
        if self.pending and (len(self.pending) >= s.max_batch or waited >= s.max_delay_s):
            return self._score()
        return []

    def flush(self) -> list[Detection]:
        """Score what is left at the end of the stream."""
        self.pending += self.windows.flush()
        return self._score() if self.pending else []

    def _score(self) -> list[Detection]:
        windows, self.pending = self.pending, []
        clips = [Prepared(w.audio, keyword_frames(w.audio, self.cfg.features), True) for w in windows]
        best: list[Detection | None] = [None] * len(windows)
        for name, profile in self.phrases.items():
            scores, located = score_and_locate(profile, clips, self.cohort, self.cfg, self.cfg.detect.speaker_check)
            fused = self.calibration.fuse(scores)
            for i, (w, m, f) in enumerate(zip(windows, located, fused)):
                if f > self.threshold and (best[i] is None or f > best[i].fused):
                    best[i] = Detection(name, (w.start + m.start * self.step) / SAMPLE_RATE,
                                        (w.start + (m.end + 1) * self.step) / SAMPLE_RATE, float(f), self.threshold,
                                        self.seconds, {k: float(v[i]) for k, v in scores.items()})
        log.debug("%.1f s: scored %d window(s), %d above threshold", self.seconds, len(windows),
                  sum(d is not None for d in best))
        out = []
        for d in best:   # windows come in stream order
            if d is not None and d.end_s - self.last_end_s > self.cfg.stream.refractory_s:
                out.append(d)
                self.last_end_s = d.end_s
        return out


def detect_blocks(detector: StreamDetector, blocks: Iterator[np.ndarray]) -> Iterator[Detection]:
    """Every detection in a stream of blocks, as soon as it is decided."""
    for y in blocks:
        yield from detector.feed(y)
    yield from detector.flush()
