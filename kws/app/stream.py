"""Streaming detection over a recording of any length: audio blocks in, time-stamped detections out.

    read_blocks     file -> 16 kHz mono blocks (never the whole file)
    StreamDetector  hop by hop: keyword columns -> every phrase's Spotter (online subsequence DTW)
                    -> candidates -> each judged on its own span by detect.score_and_locate and the
                    calibration, as predict.sh judges a clip (its cohort passes made only where the
                    decision could still need them: StreamDetector._fuse) -> one detection per utterance

Memory is bounded: the sample buffer holds the last few seconds, at most max_batch candidates wait
to be judged, and nothing else grows with the length of the stream.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from kws.scoring.calibrate import Calibration, stream_config
from kws.signal.audio import Resampler, open_audio, warn_if_truncated
from kws.scoring.cohort import load_cohort
from kws.config import SAMPLE_RATE, Config, FeatureConfig, StreamConfig
from kws.nn import efficientword
from kws.scoring.detect import Later, Prepared, deferred_groups, first_profile, prepare, score_and_locate
from kws.errors import AudioError, KwsError
from kws.nn.encoder import keyword_frames
from kws.signal.conditions import NoiseFloor, in_stream
from kws.signal.denoise import StreamDenoiser
from kws.signal.features import KeywordFrameStream, frames_per_second
from kws.scoring.profile import SpeakerProfile
from kws.scoring.recent import RecentPrior, RecentScores, recent_bases
from kws.scoring.spotter import Candidate, Spotter
from kws.scoring.veto import speaker_veto
from kws.stages import stage
from kws.signal.vad import StreamVad

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


READ_S = 2   # seconds of a file decoded per read (read_blocks)


def read_blocks(path: str | Path, block_s: float = StreamConfig.block_s) -> Iterator[np.ndarray]:
    """16 kHz mono float32 blocks of any file soundfile reads, read block by block."""
    path = Path(path)
    with open_audio(path) as f:
        if f.samplerate != SAMPLE_RATE or f.channels != 1:
            log.info("%s: %d Hz, %d channel(s); converting to %d Hz mono as it streams",
                     path, f.samplerate, f.channels, SAMPLE_RATE)
        resample, n, read = Resampler(f.samplerate), max(1, int(block_s * f.samplerate)), 0
        # Decoding costs per call (a FLAC read of 0.1 s costs nearly what 2 s do): read many blocks at once.
        while len(chunk := f.read(n * max(1, READ_S * f.samplerate // n), dtype="float32", always_2d=True)):
            for x in (chunk[i:i + n] for i in range(0, len(chunk), n)):
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
    """The last `capacity` samples of a stream, addressed by their index in the stream.

    They lie in a store twice that long, new samples written after them: the kept ones move to its front once
    per `capacity` samples appended, not with every hop (a hop's copy of the whole window cost 2 % of the listener)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._store = np.zeros(2 * capacity, np.float32)
        self._head = self._size = 0   # the window is _store[_head - _size:_head]
        self.end = 0                  # stream index one past the newest sample

    @property
    def data(self) -> np.ndarray:
        return self._store[self._head - self._size:self._head]

    @property
    def start(self) -> int:
        return self.end - self._size

    def append(self, y: np.ndarray) -> None:
        y = np.asarray(y, np.float32)
        self.end += len(y)
        if len(y) >= self.capacity:
            self._store[:self.capacity] = y[len(y) - self.capacity:]
            self._head = self._size = self.capacity
            return
        if self._head + len(y) > len(self._store):
            keep = min(self._size, self.capacity - len(y))
            self._store[:keep] = self._store[self._head - keep:self._head]
            self._head = self._size = keep
        self._store[self._head:self._head + len(y)] = y
        self._head += len(y)
        self._size = min(self._size + len(y), self.capacity)

    def get(self, a: int, b: int) -> np.ndarray:
        assert self.start <= a <= b <= self.end, "window outside the buffer: capacity too small"
        return self.data[a - self.start:b - self.start].copy()


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


@dataclass
class _Pending:
    candidate: Candidate
    audio: np.ndarray        # the candidate's span, padded
    noise_dbfs: float        # the stream's noise floor when the candidate came
    judged: np.ndarray       # what the judge hears of the span: the audio, or the denoised stream's (StreamConfig.denoise)
    noise: np.ndarray | None = None   # the stream's recent non-speech (DetectConfig.noise_match), else None


class StreamDetector:
    """Feed 16 kHz mono blocks, get Detections, one per utterance.

    The stream is cut into hops of StreamConfig.hop_s, whatever the blocks: each hop extends the keyword
    columns (features.KeywordFrameStream), every phrase's Spotter matches them as they come, and each
    Candidate is judged on its own span (the match, padded) by detect.score_and_locate and the calibration,
    as predict.sh judges a clip, in the stream's own noise floor (conditions.NoiseFloor). Live
    (max_delay_s = 0) judges each candidate in the hop that confirms it; otherwise candidates wait up to
    max_delay_s to be judged together, with the same decisions.
    """

    def __init__(self, phrases: dict[str, SpeakerProfile], calibration: Calibration, offset: float = 0.0,
                 cfg: Config = Config()):
        if not phrases:
            raise KwsError("no phrase to detect: the profile is empty")
        # The listener's own first front end (StreamConfig.frontend), the one its judge was fitted in.
        cfg = stream_config(cfg)
        phrases = {name: first_profile(p, cfg) for name, p in phrases.items()}
        self.phrases, self.calibration, self.cfg = phrases, calibration, cfg
        s = cfg.stream
        self.threshold = calibration.threshold + offset
        self.cohort = load_cohort(cfg=cfg.features, voiceprint=cfg.detect.voiceprint)
        spot = spot_features(cfg.features)
        self.frames = KeywordFrameStream(spot, s.peak_window_s, s.spot_commit_frames)
        self.step = SAMPLE_RATE / frames_per_second(spot)   # samples per keyword column
        self.spotters = [spotter_for(name, p, spot, cfg) for name, p in phrases.items()]
        self.vad = StreamVad(cfg.vad, s.peak_window_s)
        # The stream's own noise samples too, when candidates' takes are matched in it (DetectConfig.noise_match).
        self.noise = NoiseFloor(cfg.vad, s.noise_window_s, keep_samples=cfg.detect.noise_match)
        self.hop = int(s.hop_s * SAMPLE_RATE)
        self.pre, self.post = int(s.span_pre_s * SAMPLE_RATE), int(s.span_post_s * SAMPLE_RATE)
        # The buffer holds the longest span a match can have (a template at half speed), its padding and a hop.
        longest = max(sp.longest for sp in self.spotters) * 2 * self.step
        self.buffer = SampleBuffer(int(longest + self.pre + self.post + 4 * self.hop
                                       + (cfg.features.cmvn_frames + 8) * SAMPLE_RATE * cfg.features.hop_ms / 1000))
        # The denoised stream, kept beside the stream itself (RNNoise's ~10 ms delay is left in: the spans are padded).
        self.denoiser = StreamDenoiser() if s.denoise else None
        self.denoised = SampleBuffer(self.buffer.capacity) if s.denoise else None
        self.todo = np.zeros(0, np.float32)          # samples short of a whole hop
        self.fed = 0                                 # samples fed
        self.pending: list[_Pending] = []
        self.last_end = -math.inf                    # end of the last detection, stream samples
        self.judged = 0                              # candidates judged so far
        # A stream calibration sees each candidate against the phrase's recent ones (scoring.recent).
        self.recent = {name: RecentScores(calibration.names, RecentPrior(**calibration.recent)) for name in phrases} \
            if calibration.recent else {}
        self.trace: list[tuple[Candidate, float, dict[str, float]]] | None = None   # a list: every judgement kept
        # The cohort, speaker and second front end's parts may wait (_fuse) when the judge bounds every column
        # and its running statistics need none of them.
        f2 = cfg.detect.second_frontend
        deferred = {n for g in deferred_groups(f2, cfg.detect.word_embedding) for n in g}
        self.defer = bool(calibration.lo) and not deferred & set(recent_bases(calibration.names))
        self.vetoes = {name: v for name, p in phrases.items()
                       if (v := speaker_veto(p.template_audio, cfg, stream=True)) is not None}
        if cfg.detect.word_embedding:   # the optional model: refused now, not at the first candidate that needs it
            efficientword.session()

    @property
    def seconds(self) -> float:
        """Audio consumed so far."""
        return self.fed / SAMPLE_RATE

    def feed(self, y: np.ndarray) -> list[Detection]:
        x = np.concatenate([self.todo, np.asarray(y, np.float32)])
        out: list[Detection] = []
        n = len(x) // self.hop
        for k in range(n):
            self._hop(x[k * self.hop:(k + 1) * self.hop])
            self.fed += self.hop
            out += self._maybe_score()
        self.todo = x[n * self.hop:]
        return out

    def flush(self) -> list[Detection]:
        """Judge what is left at the end of the stream (the last part hop is scanned too)."""
        if len(self.todo):
            self._hop(self.todo)
            self.fed += len(self.todo)
            self.todo = np.zeros(0, np.float32)
        return self._score() if self.pending else []

    def _hop(self, x: np.ndarray) -> None:
        self.buffer.append(x)
        if self.denoiser is not None:
            with stage("denoise"):
                self.denoised.append(self.denoiser.push(x))
        with stage("stream_vad"):
            self.noise.push(*self.vad.push(x))
        with stage("stream_frames"):
            final, provisional = self.frames.push(x)
        for sp in self.spotters:
            with stage("spot"):
                found = sp.push(final, provisional)
            for c in found:
                a = max(self.buffer.start, int(c.start * self.step) - self.pre)
                b = min(self.buffer.end, int((c.end + 1) * self.step) + self.post)
                audio = judged = self.buffer.get(a, b)
                if self.denoised is not None:   # the denoised stream runs a few ms behind: the part it has
                    lo = max(a, self.denoised.start)
                    judged = self.denoised.get(lo, max(min(b, self.denoised.end), lo))
                    judged = judged if len(judged) else audio
                noise = self.noise.samples(int(self.cfg.detect.noise_match_max_s * SAMPLE_RATE)) \
                    if self.cfg.detect.noise_match else None
                self.pending.append(_Pending(c, audio, self.noise.dbfs(), judged, noise))

    def _maybe_score(self) -> list[Detection]:
        if not self.pending:
            return []
        s = self.cfg.stream
        waited = (self.fed - int((self.pending[0].candidate.end + 1) * self.step)) / SAMPLE_RATE
        return self._score() if len(self.pending) >= s.max_batch or waited >= s.max_delay_s else []

    def _score(self) -> list[Detection]:
        todo, self.pending = self.pending, []
        self.judged += len(todo)
        fused = np.full(len(todo), -np.inf)
        named: list[dict[str, float]] = [{} for _ in todo]
        for name, profile in self.phrases.items():
            idx = [i for i, p in enumerate(todo) if p.candidate.phrase == name]
            if not idx:
                continue
            clips = [span_clip(todo[i].judged, todo[i].noise_dbfs, self.cfg, todo[i].noise) for i in idx]
            # A recorded run (trace) keeps every column of every candidate; otherwise the cohort parts wait.
            scores, _, later = score_and_locate(profile, clips, self.cohort, self.cfg, self.cfg.detect.speaker_check,
                                                defer=self.defer and self.trace is None)
            scores["spot"] = np.array([todo[i].candidate.score for i in idx])
            rows = [{k: float(v[j]) for k, v in scores.items()} for j in range(len(idx))]
            if self.recent:   # in the order the candidates came, as scripts/fit_stream.py replays them
                rows = [{**r, **self.recent[name].push(r)} for r in rows]
            scores = {k: np.array([r[k] for r in rows], np.float64) for k in rows[0]}
            for i, f, j in zip(idx, self._fuse(scores, later), range(len(idx))):
                fused[i], named[i] = float(f), {k: float(v[j]) for k, v in scores.items()}
        if self.trace is not None:
            self.trace += [(p.candidate, fused[i], named[i]) for i, p in enumerate(todo)]
        out = []
        for i in sorted(range(len(todo)), key=lambda i: todo[i].candidate.end):   # in stream order
            c = todo[i].candidate
            end = int((c.end + 1) * self.step)
            fresh = new_utterance(c.start * self.step, end, self.last_end, self.cfg.stream.refractory_s * SAMPLE_RATE)
            if fused[i] > self.threshold and fresh and self._voice_ok(todo[i], named[i]):
                out.append(Detection(c.phrase, c.start * self.step / SAMPLE_RATE, end / SAMPLE_RATE, fused[i],
                                     self.threshold, self.seconds, named[i]))
                self.last_end = end
        log.debug("%.1f s: judged %d candidate(s), %d detection(s)", self.seconds, len(todo), len(out))
        return out

    def _fuse(self, scores: dict[str, np.ndarray], later: list[Later]) -> np.ndarray:
        """The calibrated score of each row, -inf for a row that cannot pass the threshold: each deferred
        part (detect.Later) is made only for the rows whose best reachable score
        (Calibration.upper) still passes it, so every decision is the one the full judgement makes."""
        n = len(next(iter(scores.values())))
        live = np.arange(n)
        for d in later:
            # 1e-9: upper() sums what fuse() multiplies, so the two may differ in the last bits.
            live = live[self.calibration.upper({k: v[live] for k, v in scores.items()}) > self.threshold - 1e-9]
            if not len(live):
                break
            for k, v in d.complete(live, self.cfg).items():
                scores[k][live] = v
        fused = np.full(n, -np.inf)
        if len(live):
            fused[live] = self.calibration.fuse({k: v[live] for k, v in scores.items()})
        return fused

    def _voice_ok(self, p: _Pending, named: dict[str, float]) -> bool:
        """Whether an accepted candidate passes the speaker veto (StreamConfig.speaker_veto; its score is
        kept with the others as `veto`)."""
        veto = self.vetoes.get(p.candidate.phrase)
        if veto is None:
            return True
        with stage("veto"):
            named["veto"] = float(veto.scores([p.audio])[0])
        return named["veto"] >= veto.min_score


def new_utterance(start: float, end: float, last_end: float, refractory: float) -> bool:
    """Whether a detection is a new utterance, not the last detection's again: it neither overlaps the
    last one nor ends within `refractory` of its end (one unit for all four: samples or seconds)."""
    return end - last_end > refractory and start >= last_end


def span_clip(audio: np.ndarray, noise_dbfs: float, cfg: Config, noise: np.ndarray | None = None) -> Prepared:
    """A candidate's span as a platform clip: framed by detect.prepare (cut to its speech only where
    StreamConfig.span_vad_crop says so; whole by default), its conditions those
    of its own speech in the stream's noise floor, and its noise (for noise-matched takes) the stream's
    recent non-speech, not the span's few frames between voices."""
    p = prepare(audio, cfg, crop=cfg.stream.span_vad_crop)
    return replace(p, conditions=in_stream(p.conditions, noise_dbfs), noise=p.noise if noise is None else noise)


def spot_features(cfg: FeatureConfig) -> FeatureConfig:
    """The front end spotters match in: MFCC (cheap, and the frames KeywordFrameStream makes)."""
    return replace(cfg, frontend="mfcc")


def spotter_for(name: str, profile: SpeakerProfile, spot: FeatureConfig, cfg: Config) -> Spotter:
    """A phrase's Spotter: its MFCC templates and their impostor statistics, the profile's own when it
    was enrolled in MFCC, else made from its stored takes against the MFCC cohort."""
    if cfg.features.frontend == spot.frontend:
        templates, mean, std = profile.templates, profile.kw_cohort_mean, profile.kw_cohort_std
    else:
        from kws.scoring.detect import keyword_statistics
        templates = [keyword_frames(np.asarray(a, np.float32), spot) for a in profile.template_audio]
        cohort = load_cohort(cfg=spot, voiceprint="ge2e")
        _, mean, std, _ = keyword_statistics(templates, cohort.keyword_frames, cfg.detect.top_k)
    return Spotter(name, templates, mean, std, frames_per_second(spot), cfg.stream, cfg.detect.top_k)


def detect_blocks(detector: StreamDetector, blocks: Iterator[np.ndarray]) -> Iterator[Detection]:
    """Every detection in a stream of blocks, as soon as it is decided."""
    for y in blocks:
        yield from detector.feed(y)
    yield from detector.flush()
