"""Augmentation for training audio: pure functions on float32 16 kHz numpy arrays.

Every random choice comes from the ``rng`` the caller passes, so the caller decides the seeding
(per file, in the training-set builder) and the same seed always gives the same samples. The
platform's test clips are noisy, reverberant, band-limited and at any level; a model trained on
clean takes alone learns to rely on exactly what the test set takes away.

Pitch and tempo go through sox (its WSOLA is better than anything worth writing here); the
functions still take and return numpy arrays, and sox runs with dither off and its repeatable
random mode, so the output is deterministic.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
from kws.config import SAMPLE_RATE

SR = SAMPLE_RATE


# ---------------------------------------------------------------- noise

def load_noise_named(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(file stem, mono samples) for every FLAC/WAV in folder, sorted by name (a stable order seeds stably)."""
    out = []
    for p in sorted(folder.glob("*.flac")) + sorted(folder.glob("*.wav")):
        y, sr = sf.read(p, dtype="float32", always_2d=True)
        if sr != SR:
            raise ValueError(f"{p}: {sr} Hz; noise recordings must be {SR} Hz")
        out.append((p.stem, y.mean(axis=1)))
    return out


def load_noise(folder: Path) -> list[np.ndarray]:
    """The samples of load_noise_named, for callers that do not need the names."""
    return [y for _, y in load_noise_named(folder)]


def noise_segment(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random stretch of `length` samples of noise, looping the recording if it is shorter."""
    if len(noise) <= length:
        noise = np.tile(noise, length // len(noise) + 1)
    s = int(rng.integers(0, len(noise) - length + 1))
    return noise[s:s + length]


def mix_at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """y plus noise (same length) scaled so that mean power(y) / mean power(noise) is snr_db.

    The SNR is over the whole clip, silence included, as the platform's test clips were made.
    """
    scale = np.sqrt((np.mean(y ** 2) + 1e-10) / (np.mean(noise ** 2) + 1e-10) / 10 ** (snr_db / 10))
    return y + noise * scale


def add_noise(y: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Mix a random stretch of a noise recording into y at snr_db."""
    return mix_at_snr(y, noise_segment(noise, len(y), rng), snr_db).astype(np.float32)


# ---------------------------------------------------------------- level

def peak_db(y: np.ndarray) -> float:
    return float(20 * np.log10(np.abs(y).max() + 1e-9))


def gain(y: np.ndarray, db: float) -> np.ndarray:
    """Scale by db decibels."""
    return (y * 10 ** (db / 20)).astype(np.float32)


def peak_normalise(y: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale so the largest sample sits at peak_dbfs (a level the platform's clips can have)."""
    return (y / (np.abs(y).max() + 1e-9) * 10 ** (peak_dbfs / 20)).astype(np.float32)


# ---------------------------------------------------------------- speed, tempo, pitch

def speed(y: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (like sox speed): length / factor, pitch and formants x factor.

    Resampling, not sox, so it is exact and cheap; the ratio is rounded to a fraction with a
    denominator of at most 200 (0.5 % at worst is far below the jitter it is used for).
    """
    from scipy.signal import resample_poly
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    frac = Fraction(factor).limit_denominator(200)
    if frac == 1:
        return np.asarray(y, np.float32)
    return resample_poly(y, frac.denominator, frac.numerator).astype(np.float32)


def _sox(y: np.ndarray, effects: Sequence[str], sr: int = SR) -> np.ndarray:
    """Run sox effects on raw float32 samples through pipes (no temporary files)."""
    if shutil.which("sox") is None:
        raise RuntimeError("sox is not installed (apt-get install sox); it is needed for pitch and tempo")
    raw = ["-t", "raw", "-r", str(sr), "-e", "floating-point", "-b", "32", "-c", "1"]
    cmd = ["sox", "-D", "-R", "-V1", *raw, "-", *raw, "-", *effects]
    r = subprocess.run(cmd, input=np.ascontiguousarray(y, dtype="<f4").tobytes(), capture_output=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"sox {' '.join(effects)} failed: {r.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(r.stdout, dtype="<f4").astype(np.float32)


def pitch(y: np.ndarray, semitones: float, sr: int = SR) -> np.ndarray:
    """Shift pitch (and formants) by semitones, keeping the length (sox pitch)."""
    if abs(semitones) < 1e-3:
        return np.asarray(y, np.float32)
    return _sox(y, ["pitch", f"{100 * semitones:.1f}"], sr)


def tempo(y: np.ndarray, factor: float, sr: int = SR) -> np.ndarray:
    """Speak `factor` times faster at the same pitch (sox tempo, speech mode)."""
    if abs(factor - 1) < 1e-4:
        return np.asarray(y, np.float32)
    return _sox(y, ["tempo", "-s", f"{factor:.4f}"], sr)


# ---------------------------------------------------------------- channel

def band_limit(y: np.ndarray, low_hz: float | None, high_hz: float | None, sr: int = SR,
               order: int = 8) -> np.ndarray:
    """Zero-phase Butterworth band-pass (or low-/high-pass when one edge is None).

    Cheap microphones and telephone lines cut the lows and the highs; zero phase keeps the
    words where they were.
    """
    from scipy.signal import butter, sosfiltfilt
    if low_hz and high_hz:
        sos = butter(order, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos")
    elif high_hz:
        sos = butter(order, high_hz, btype="lowpass", fs=sr, output="sos")
    elif low_hz:
        sos = butter(order, low_hz, btype="highpass", fs=sr, output="sos")
    else:
        return np.asarray(y, np.float32)
    return sosfiltfilt(sos, y).astype(np.float32)


def mulaw_8k(y: np.ndarray, sr: int = SR, mulaw: bool = True) -> np.ndarray:
    """An 8 kHz round trip, optionally with 8-bit mu-law companding, like a G.711 phone call."""
    from scipy.signal import resample_poly
    x = resample_poly(y, 8000, sr)
    if mulaw:
        mu = 255.0
        x = np.clip(x, -1, 1)
        c = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
        c = np.round(c * 127) / 127                      # 8 bits
        x = np.sign(c) * ((1 + mu) ** np.abs(c) - 1) / mu
    out = resample_poly(x, sr, 8000)[:len(y)]
    return np.pad(out, (0, len(y) - len(out))).astype(np.float32)


def telephone(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """300-3400 Hz and a mu-law 8 kHz round trip."""
    return mulaw_8k(band_limit(y, 300, 3400, sr), sr)


# ---------------------------------------------------------------- reverberation

@dataclass(frozen=True)
class Room:
    """What a simulated impulse response stands for (for the manifest)."""
    dims: tuple[float, float, float]
    rt60: float          # the Sabine target the absorption was chosen for
    distance: float      # source to microphone, metres

    def describe(self) -> str:
        d = "x".join(f"{v:.1f}" for v in self.dims)
        return f"rir(room={d}m,rt60={self.rt60:.2f}s,dist={self.distance:.1f}m)"


def make_rir(rng: np.random.Generator, rt60: float, sr: int = SR) -> tuple[np.ndarray, Room]:
    """Impulse response of a random shoebox room (pyroomacoustics image sources) with the given RT60.

    The room is 3-10 x 3-8 x 2.4-4 m; source and microphone anywhere at least 0.5 m from the walls.
    The absorption and image order come from Sabine's formula, as pyroomacoustics recommends.
    Pure image sources are deterministic (its ray tracer is not, so it is not used).
    """
    import pyroomacoustics as pra
    dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.4, 4)])
    src = 0.5 + rng.random(3) * (dims - 1.0)
    mic = 0.5 + rng.random(3) * (dims - 1.0)
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(absorption), max_order=max_order)
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float32)
    return rir, Room(tuple(float(v) for v in dims), float(rt60), float(np.linalg.norm(src - mic)))


def reverb(y: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an impulse response; same length and RMS as y, aligned on the direct path.

    Aligning on the strongest tap keeps the word where it was (the labels are per file, but
    the trimmed real clips have only ~0.15 s of margin); keeping the RMS separates reverberation
    from level, which gain() handles.
    """
    from scipy.signal import fftconvolve
    d = int(np.argmax(np.abs(rir)))
    wet = fftconvolve(y, rir)[d:d + len(y)]
    wet = np.pad(wet, (0, len(y) - len(wet)))
    return (wet * np.sqrt((np.mean(y ** 2) + 1e-12) / (np.mean(wet ** 2) + 1e-12))).astype(np.float32)


# ---------------------------------------------------------------- a random chain

@dataclass(frozen=True)
class AugmentConfig:
    """How often each step is applied to a take that is augmented at all."""
    fraction: float = 0.5                  # of takes augmented at all
    p_speed: float = 0.25                  # speed perturbation 0.9-1.1 (tempo and pitch)
    p_pitch: float = 0.15                  # pitch shift +-2 semitones (sox), when no speed change
    p_tempo: float = 0.10                  # tempo 0.85-1.15 at the same pitch (sox), when neither
    p_reverb: float = 0.35
    p_noise: float = 0.6
    snr_db: tuple[float, float] = (0.0, 25.0)     # the noise rule: down to 0 dB
    p_band: float = 0.25                   # telephone, 8 kHz round trip, or a cheap-mic band
    peak_dbfs: tuple[float, float] = (-25.0, -1.0)


class Augmenter:
    """Applies a random chain of the functions above, drawn from the rng given per take."""

    def __init__(self, noises: list[tuple[str, np.ndarray]], rirs: list[tuple[np.ndarray, Room]],
                 cfg: AugmentConfig = AugmentConfig()):
        self.noises, self.rirs, self.cfg = noises, rirs, cfg

    def __call__(self, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """(augmented or untouched y, a short description of what was done: 'none' if nothing)."""
        c = self.cfg
        if rng.random() >= c.fraction:
            return np.asarray(y, np.float32), "none"
        draws = rng.random(4)           # one draw per step, always, so one step's choice never shifts another's
        steps: list[str] = []
        if draws[0] < c.p_speed:
            f = float(rng.uniform(0.9, 1.1))
            y = speed(y, f)
            steps.append(f"speed{f:.3f}")
        elif draws[0] < c.p_speed + c.p_pitch:
            st = float(rng.uniform(-2, 2))
            y = pitch(y, st)
            steps.append(f"pitch{st:+.2f}st")
        elif draws[0] < c.p_speed + c.p_pitch + c.p_tempo:
            f = float(rng.uniform(0.85, 1.15))
            y = tempo(y, f)
            steps.append(f"tempo{f:.3f}")
        if draws[1] < c.p_reverb and self.rirs:
            rir, room = self.rirs[int(rng.integers(len(self.rirs)))]
            y = reverb(y, rir)
            steps.append(room.describe())
        if (draws[2] < c.p_noise or not steps) and self.noises:
            name, n = self.noises[int(rng.integers(len(self.noises)))]
            snr = float(rng.uniform(*c.snr_db))
            y = add_noise(y, n, snr, rng)
            steps.append(f"noise({name},{snr:.1f}dB)")
        if draws[3] < c.p_band:
            kind = int(rng.integers(3))
            if kind == 0:
                y = telephone(y)
                steps.append("telephone(300-3400Hz,mulaw8k)")
            elif kind == 1:
                y = mulaw_8k(y, mulaw=False)
                steps.append("8k-roundtrip")
            else:
                lo, hi = float(rng.uniform(80, 250)), float(rng.uniform(4000, 7000))
                y = band_limit(y, lo, hi)
                steps.append(f"band({lo:.0f}-{hi:.0f}Hz)")
        target = float(rng.uniform(*c.peak_dbfs))
        y = gain(y, target - peak_db(y))
        steps.append(f"peak{target:.1f}dBFS")
        return y, "+".join(steps)
