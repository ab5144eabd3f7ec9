"""Enrollment take checks: level, clipping, noise, length and consistency, with advice per take.

Pure functions over samples (plus one reader for files) that return typed reports; the CLI
prints ``format_report``. Nothing here changes what enrollment builds: the advice is for the
person recording, who decides whether to redo a take.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from kws.signal.audio import open_audio, read_audio
from kws.config import SAMPLE_RATE, Config
from kws.scoring.detect import keyword_distances, prepare
from kws.errors import AudioError
from kws.signal import conditions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipQuality:
    name: str
    source_rate: int            # as recorded, before conversion to 16 kHz mono
    source_channels: int
    seconds: float
    speech_s: float             # VAD speech, pauses inside the phrase included
    level_dbfs: float           # RMS over speech frames
    peak_dbfs: float            # of the samples as recorded
    clipped_fraction: float     # of the samples as recorded
    noise_dbfs: float           # median RMS of non-speech frames (see measure)
    snr_db: float               # level minus noise
    consistency: float = math.nan   # median DTW distance to the other takes; NaN with fewer than 3 usable
    problems: tuple[str, ...] = ()  # reasons to record the take again
    notes: tuple[str, ...] = ()     # worth knowing, no reason to redo

    @property
    def redo(self) -> bool:
        return bool(self.problems)


@dataclass(frozen=True)
class EnrollmentQuality:
    clips: tuple[ClipQuality, ...]
    median_consistency: float   # NaN with fewer than 3 usable takes
    advice: tuple[str, ...]     # about the set as a whole


def measure(y: np.ndarray, name: str, cfg: Config = Config(), source_rate: int = SAMPLE_RATE,
            source_channels: int = 1, raw_peak: float | None = None, raw_clipped: float | None = None,
            cond: conditions.Conditions | None = None) -> ClipQuality:
    """Level, noise and length of one take (16 kHz mono samples): the one enrollment validator, whose
    problems the report shows and enroll.check_clip logs. raw_* are from the file as recorded; cond: the
    take's conditions.measure(y, cfg.vad), when the caller has them."""
    q = cfg.quality
    c = cond or conditions.measure(y, cfg.vad)
    speech_s, level, snr = c.speech_s, c.level_dbfs, c.snr_db
    peak = raw_peak if raw_peak is not None else float(np.abs(y).max(initial=0.0))
    clipped = raw_clipped if raw_clipped is not None else c.clipped_fraction

    problems, notes = [], []
    if speech_s <= 0:
        problems.append("no speech found: record the phrase again, closer to the microphone")
    else:
        if speech_s < q.min_speech_s:
            problems.append(f"only {speech_s:.2f} s of speech: say the whole phrase")
        if speech_s > q.max_speech_s:
            problems.append(f"{speech_s:.1f} s of speech: say only the phrase, with a short pause before and after")
        if level < q.min_level_dbfs:
            problems.append(f"quiet ({level:.0f} dBFS): speak closer to the microphone or raise the input gain")
        if not math.isnan(snr) and snr < q.min_snr_db:
            problems.append(f"noisy (speech {snr:.0f} dB above the background): record somewhere quieter")
    if clipped > q.max_clipped_fraction:
        problems.append(f"clipped ({100 * clipped:.2f}% of samples at full scale): lower the input gain")
    if speech_s > 0 and not c.paused:
        notes.append("hardly any pause around the phrase: noise taken from its quietest moments; "
                     "leave ~0.5 s before and after")
    if source_rate != SAMPLE_RATE or source_channels != 1:
        notes.append(f"converted from {source_rate} Hz, {source_channels} channel(s) to 16 kHz mono")
    if source_rate < SAMPLE_RATE:
        notes.append(f"recorded at {source_rate} Hz: the top of the speech band is missing; 16 kHz or more is better")
    return ClipQuality(name, source_rate, source_channels, round(len(y) / SAMPLE_RATE, 3), round(speech_s, 3),
                       level, conditions.db(peak ** 2), clipped, c.noise_dbfs, snr, problems=tuple(problems), notes=tuple(notes))


def consistency(templates: list[np.ndarray]) -> np.ndarray:
    """Each take's median DTW distance to the others (both directions averaged): how well it fits the set.

    The median, not the mean, so that one odd take does not make every other take look odd too.
    """
    d = keyword_distances(templates, templates)
    d = (d + d.T) / 2
    np.fill_diagonal(d, np.nan)
    return np.nanmedian(d, axis=1)


def assess(takes: list[tuple[ClipQuality, np.ndarray | None]], cfg: Config = Config()) -> EnrollmentQuality:
    """Add to each measured take (with its 16 kHz samples; None if unreadable) how consistent it is with
    the others, then advise on the set."""
    frames = {i: prepare(y, cfg, pad_ms=cfg.enroll.template_pad_ms).frames for i, (m, y) in enumerate(takes)
              if y is not None and m.speech_s > 0}
    frames = {i: f for i, f in frames.items() if len(f) >= cfg.enroll.min_template_frames}
    measured = [m for m, _ in takes]
    median = math.nan
    if len(frames) >= 3:   # with two takes nobody can say which one is odd
        loo = dict(zip(frames, consistency(list(frames.values()))))
        median = float(np.median(list(loo.values())))
        for i, c in loo.items():
            m = replace(measured[i], consistency=float(c))
            if c > cfg.quality.outlier_ratio * median:
                m = replace(m, problems=m.problems + (
                    f"unlike the other takes (distance {c:.2f}, typical {median:.2f}): another word, "
                    "a slip or a very different manner; record it again",))
            measured[i] = m
    usable = len(frames)
    advice: list[str] = []
    want = cfg.enroll.expected_takes
    if usable < want:
        advice.append(f"{usable} usable take(s); {want} are recommended: record {want - usable} more and add them with --add")
    if median > cfg.quality.max_set_distance:   # NaN compares False
        advice.append(f"the takes differ from each other more than usual (median distance {median:.2f}, "
                      f"limit {cfg.quality.max_set_distance:.2f}): say the phrase the same way each time; "
                      "expect more misses until then")
    redo = [m.name for m in measured if m.redo]
    if redo:
        advice.append("record again: " + ", ".join(redo))
    if not advice:
        advice.append("all takes look fine")
    return EnrollmentQuality(tuple(measured), median, tuple(advice))


def unusable(q: EnrollmentQuality) -> bool:
    """The rule both enrollments apply: every take needs redoing (noise, no speech, all unlike each other...)."""
    return bool(q.clips) and all(c.redo for c in q.clips)


def warn_about_takes(q: EnrollmentQuality) -> None:
    """Log what the quality checks found (enrollment.sh: the platform must enroll something regardless)."""
    for c in q.clips:
        for p in c.problems:
            log.warning("%s: %s", c.name, p)
    for a in q.advice:
        if a != "all takes look fine":
            log.warning("enrollment takes: %s", a)
    if unusable(q):
        log.warning("WARNING: none of the %d takes is usable as a wake phrase (see above); enrolled anyway, "
                    "expect poor detection until they are recorded again", len(q.clips))


def measure_file(path: Path, cfg: Config = Config()) -> tuple[ClipQuality, np.ndarray | None]:
    """Read one take (any format soundfile reads) and measure it; unreadable files come back with the reason."""
    try:
        y = read_audio(path, cfg.audio)
        peak, clipped, sr, channels = _raw_levels(path, cfg)
    except (AudioError, sf.LibsndfileError, RuntimeError) as e:
        nan = math.nan
        return ClipQuality(path.name, 0, 0, 0.0, 0.0, nan, nan, 0.0, nan, nan, problems=(str(e),)), None
    return measure(y, path.name, cfg, sr, channels, peak, clipped), y


def _raw_levels(path: Path, cfg: Config) -> tuple[float, float, int, int]:
    """(peak, clipped fraction, rate, channels) of the samples as recorded, read in blocks over the part
    read_audio uses, so a long take never sits in memory twice."""
    peak, clipped, n = 0.0, 0, 0
    with open_audio(path) as f:
        left = int(cfg.audio.max_seconds * f.samplerate)
        while left > 0 and len(x := f.read(min(left, 1 << 18), dtype="float32", always_2d=True)):
            a = np.abs(x)
            peak, clipped, n, left = max(peak, float(a.max())), clipped + int((a >= conditions.CLIP_PEAK).sum()), n + a.size, left - len(x)
        return peak, clipped / max(n, 1), f.samplerate, f.channels


def assess_files(paths: list[Path], cfg: Config = Config()) -> EnrollmentQuality:
    """assess() over files; an unreadable file is reported as a take to redo."""
    return assess([measure_file(p, cfg) for p in paths], cfg)


def _f(x: float, fmt: str) -> str:
    return "-" if math.isnan(x) else format(x, fmt)


def format_report(q: EnrollmentQuality) -> str:
    """A table, one take per row, then what to do."""
    head = f"{'take':<24} {'rate':>6} {'speech':>7} {'level':>6} {'peak':>6} {'clip%':>6} {'noise':>6} {'SNR':>5} " \
           f"{'dist':>5}  verdict"
    lines = [head, "-" * len(head)]
    for c in q.clips:
        lines.append(f"{c.name[:24]:<24} {c.source_rate:>6} {c.speech_s:>6.2f}s {_f(c.level_dbfs, '6.1f')} "
                     f"{_f(c.peak_dbfs, '6.1f')} {100 * c.clipped_fraction:>6.2f} {_f(c.noise_dbfs, '6.1f')} "
                     f"{_f(c.snr_db, '5.1f')} {_f(c.consistency, '5.2f')}  {'REDO' if c.redo else 'ok'}")
    lines.append("(level, peak, noise in dBFS; SNR in dB; dist: median DTW distance to the other takes)")
    for c in q.clips:
        lines += [f"  {c.name}: redo: {p}" for p in c.problems] + [f"  {c.name}: note: {n}" for n in c.notes]
    lines += [f"advice: {a}" for a in q.advice]
    return "\n".join(lines)
