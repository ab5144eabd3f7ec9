"""Synthetic speakers: who they are (a spec drawn from a seed) and how one take of a phrase is rendered.

Why synthetic speakers at all: the real training corpora have 34 speakers and 60 words; a wake-word
model also has to see many voices saying many multi-syllable phrases, in the languages the
platform uses (mostly Mandarin). Text-to-speech gives that for free, with exact labels.

A speaker is an engine (espeak-ng, flite or festival), a voice, a language, and a personal pitch,
speaking rate and vocal-tract length. Each take then jitters pitch, rate, loudness and pauses
around the speaker's own values, because a TTS engine says the same text with the same settings
identically every time: ten takes must not be ten copies. The vocal-tract length is a resampling
factor whose tempo and pitch effects are compensated in the engine's own rate and pitch, so it
moves the formants only, which separates speakers that share a voice.

Everything random comes from numpy Generators seeded by the caller, and the engines are
deterministic for given settings, so a spec and a seed always give the same samples.
"""
from __future__ import annotations

import io
import logging
import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from kws.signal.audio import to_mono_16k
from augment import peak_normalise, pitch, speed
from synth_phrases import POOLS, PhrasePool
from kws.config import SAMPLE_RATE

log = logging.getLogger(__name__)

SR = SAMPLE_RATE

ENGINE_COMMANDS = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}
ENGINE_LICENCES = {
    "espeak-ng": "synthetic: espeak-ng (GPL-3.0-or-later) voice data; generated audio",
    "flite": "synthetic: CMU Flite and its cmu_us voices (BSD-style CMU licence); generated audio",
    "festival": "synthetic: Festival (X11-style licence) with festvox voices (Edinburgh/CMU free licences); "
                "generated audio",
}

# espeak-ng voices per language (ISO 639-1 code as in the words manifest -> espeak-ng voice names)
ESPEAK_VOICES: dict[str, tuple[str, ...]] = {
    "zh": ("cmn-latn-pinyin",),
    "en": ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd"),
    "ar": ("ar",), "de": ("de",), "es": ("es", "es-419"), "fr": ("fr-fr", "fr-be", "fr-ch"), "hi": ("hi",),
    "ru": ("ru", "ru-lv"), "it": ("it",), "pt": ("pt-br", "pt"),
}
POOL_OF_LANG = {"zh": "cmn", "en": "en", "ar": "ar", "de": "de", "es": "es", "fr": "fr", "hi": "hi", "ru": "ru",
                "it": "it", "pt": "pt"}
# espeak-ng voice variants that sound like people (the robots, whispers and croaks are left out)
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
                   "klatt3", "klatt4", "adam", "Andy", "Annie", "anika", "aunty", "belinda", "benjamin", "boris",
                   "caleb", "david", "ed", "edward", "grandma", "grandpa", "iven", "john", "linda", "max", "michel",
                   "paul", "quincy", "rob", "robert", "steph", "travis", "victor", "zac", "Alicia", "Andrea",
                   "Denis", "Hugo", "Lee", "Marco", "Mario", "Michael", "Mike")
FLITE_VOICES = ("kal16", "awb", "rms", "slt")              # kal (8 kHz) is left out
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")

# Languages in a repeating order of 20 speakers: 6 Mandarin (the platform's main language), 5 English,
# 2 Arabic, one each of 7 others. English speakers cycle espeak-ng, flite, espeak-ng, festival.
SCHEDULE = ("zh", "en", "zh", "ar", "en", "zh", "de", "en", "zh", "es", "en", "zh", "fr", "ar", "zh", "hi", "en",
            "ru", "it", "pt")
ENGLISH_ENGINES = ("espeak-ng", "flite", "espeak-ng", "festival")


class SynthError(RuntimeError):
    """A TTS engine is missing or failed; the message says which and what to do."""


def available_engines() -> set[str]:
    """The engines whose command is on PATH (flite and festival also need sox, which shifts their pitch)."""
    found = {e for e, cmd in ENGINE_COMMANDS.items() if shutil.which(cmd)}
    return found if shutil.which("sox") else found & {"espeak-ng"}


def engine_version(engine: str) -> str:
    """A one-line version string for the build record ('' when unknown)."""
    cmd = {"espeak-ng": ["espeak-ng", "--version"], "flite": ["flite", "--version"],
           "festival": ["festival", "--version"]}[engine]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    return next((ln for ln in lines if "version" in ln.lower()), lines[0] if lines else "")


# ---------------------------------------------------------------- engines

def _run(cmd: list[str], engine: str, text: str) -> bytes:
    try:
        r = subprocess.run(cmd, capture_output=True, check=False, timeout=120)
    except FileNotFoundError as e:
        raise SynthError(f"{engine} is not installed ({cmd[0]} not found): apt-get install {engine}") from e
    if r.returncode != 0:
        raise SynthError(f"{engine} failed on {text!r} (exit {r.returncode}): "
                         f"{r.stderr.decode(errors='replace').strip()[-300:]}")
    return r.stdout


def _decode(wav: bytes, engine: str, text: str) -> np.ndarray:
    try:
        y, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise SynthError(f"{engine} gave no readable audio for {text!r}: {e}") from e
    if len(y) == 0:
        raise SynthError(f"{engine} gave empty audio for {text!r}")
    return to_mono_16k(y, sr)


def espeak(text: str, voice: str, wpm: int = 175, pitch_value: int = 50, amplitude: int = 100,
           word_gap: int = 0) -> np.ndarray:
    """espeak-ng with its own controls (-s words per minute, -p 0-99, -a 0-200, -g x10 ms) -> 16 kHz float32."""
    cmd = ["espeak-ng", "-v", voice, "-s", str(int(wpm)), "-p", str(int(pitch_value))]
    if amplitude != 100:
        cmd += ["-a", str(int(amplitude))]
    if word_gap:
        cmd += ["-g", str(int(word_gap))]
    return _decode(_run(cmd + ["--stdout", text], "espeak-ng", text), "espeak-ng", text)


def flite(text: str, voice: str, duration_stretch: float = 1.0) -> np.ndarray:
    """CMU flite; a duration_stretch above 1 speaks slower."""
    with tempfile.TemporaryDirectory(prefix="kws-flite-") as d:
        out = Path(d) / "out.wav"
        _run(["flite", "-voice", voice, "--setf", f"duration_stretch={duration_stretch:.4f}", "-t", text,
              "-o", str(out)], "flite", text)
        return _decode(out.read_bytes(), "flite", text)


def festival(text: str, voice: str, duration_stretch: float = 1.0) -> np.ndarray:
    """Festival's text2wave with a voice_<name> and Duration_Stretch (above 1 speaks slower)."""
    with tempfile.TemporaryDirectory(prefix="kws-festival-") as d:
        src, out = Path(d) / "in.txt", Path(d) / "out.wav"
        src.write_text(text + "\n", encoding="utf-8")
        stretch = f"(Parameter.set 'Duration_Stretch {duration_stretch:.4f})"
        _run(["text2wave", "-eval", f"(voice_{voice})", "-eval", stretch, "-o", str(out), str(src)], "festival", text)
        return _decode(out.read_bytes(), "festival", text)


ESPEAK_UNITS_PER_SEMITONE = 6.7   # -p units per semitone of median F0 (see render)


def render(engine: str, voice: str, text: str, *, rate: float = 1.0, pitch_st: float = 0.0, amplitude: float = 1.0,
           word_gap: int = 0) -> np.ndarray:
    """One phrase with one engine -> float32 16 kHz samples.

    rate: relative speaking rate (1 = the engine's default); pitch_st: semitones from the voice's own
    pitch; amplitude: relative loudness; word_gap: extra pause between words in 10 ms units (espeak-ng only).
    espeak-ng changes pitch itself (-p; the median F0 of its voices moves about a semitone per 6.7
    units, measured on en+m3, en+f2 and cmn-latn-pinyin); flite and festival have no comparable
    control across voice types, so their pitch goes through sox.
    """
    if engine == "espeak-ng":
        p = int(np.clip(round(50 + ESPEAK_UNITS_PER_SEMITONE * pitch_st), 0, 99))
        wpm = int(np.clip(round(175 * rate), 80, 450))
        return espeak(text, voice, wpm, p, int(np.clip(round(100 * amplitude), 10, 200)), word_gap)
    if engine == "flite":
        y = flite(text, voice, 1.0 / rate)
    elif engine == "festival":
        y = festival(text, voice, 1.0 / rate)
    else:
        raise SynthError(f"unknown engine {engine!r}; expected one of {sorted(ENGINE_COMMANDS)}")
    return (pitch(y, pitch_st) * amplitude).astype(np.float32)


# ---------------------------------------------------------------- speakers

@dataclass(frozen=True)
class SpeakerSpec:
    """A synthetic speaker: everything that stays the same across its takes."""
    index: int                  # position among the synthetic speakers (seeds everything about it)
    engine: str
    voice: str                  # engine voice, with an espeak-ng variant as voice+variant
    lang: str                   # ISO 639-1, as in the words manifest
    pitch_st: float             # personal pitch, semitones from the voice's default
    rate: float                 # personal speaking rate, relative
    vtl: float                  # vocal-tract length factor: >1 shorter tract, higher formants
    word_gap: int               # espeak-ng -g, 10 ms units
    wake: tuple[str, ...]       # wake phrases (keywords/)
    others: tuple[str, ...]     # other phrases (others/), confusables included

    def describe(self) -> str:
        return (f"{self.engine} {self.voice} {self.lang} pitch{self.pitch_st:+.1f}st rate{self.rate:.2f} "
                f"vtl{self.vtl:.2f}")


def _retone(syllable: str, rng: np.random.Generator) -> str:
    """A pinyin syllable with another tone (1-4): 'zhi4' -> 'zhi2'."""
    m = re.fullmatch(r"([a-zü]+)([1-5])", syllable)
    if not m:
        return syllable
    tones = [t for t in "1234" if t != m.group(2)]
    return m.group(1) + tones[int(rng.integers(len(tones)))]


def confusables(wake: list[str], pool: PhrasePool, lang: str, rng: np.random.Generator) -> list[str]:
    """Phrases that share words or syllables with the wake phrases but are not them.

    Partial phrases (all but the last or the first word), one word swapped for a word of another
    phrase, the words reversed, and for Mandarin one syllable said with another tone. These are the
    negatives a wake-word model gets wrong when it listens for a syllable rather than the phrase.
    Returned shuffled (by rng) and without duplicates or wake phrases.
    """
    vocab = sorted({w for p in pool.wake + pool.other for w in p.split()})
    out: list[str] = []
    for phrase in wake:
        words = phrase.split()
        if len(words) >= 2:
            out += [" ".join(words[:-1]), " ".join(words[1:]), " ".join(reversed(words))]
        k = int(rng.integers(len(words)))
        swapped = list(words)
        swapped[k] = vocab[int(rng.integers(len(vocab)))]
        out.append(" ".join(swapped))
        if lang == "zh":
            k = int(rng.integers(len(words)))
            out.append(" ".join(_retone(w, rng) if i == k else w for i, w in enumerate(words)))
    seen = set(wake)
    uniq = []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return [uniq[i] for i in rng.permutation(len(uniq))]


def make_speaker(index: int, seed: int, engines: set[str], n_wake: int | None = None,
                 n_others: int = 20) -> SpeakerSpec:
    """The index-th synthetic speaker for a seed. Depends on nothing else but the installed engines.

    The language comes from SCHEDULE (so any 20 consecutive speakers cover every language); an
    English speaker uses flite or festival where its turn says so and that engine is installed,
    else espeak-ng. n_wake None draws 2 or 3 wake phrases. About 40 % of the other phrases are
    confusables, a few are other speakers' wake phrases, the rest everyday phrases.
    """
    if "espeak-ng" not in engines:
        raise SynthError("espeak-ng is not installed: apt-get install espeak-ng (or build without synthetic speakers)")
    rng = np.random.default_rng([seed, 1, index])
    lang = SCHEDULE[index % len(SCHEDULE)]
    engine = "espeak-ng"
    if lang == "en":
        turn = sum(1 for i in range(index) if SCHEDULE[i % len(SCHEDULE)] == "en")
        wanted = ENGLISH_ENGINES[turn % len(ENGLISH_ENGINES)]
        engine = wanted if wanted in engines else "espeak-ng"
    if engine == "espeak-ng":
        base = ESPEAK_VOICES[lang]
        voice = f"{base[int(rng.integers(len(base)))]}+{ESPEAK_VARIANTS[int(rng.integers(len(ESPEAK_VARIANTS)))]}"
        pitch_st, rate = float(rng.uniform(-5, 5)), float(rng.uniform(0.8, 1.2))
    else:
        names = FLITE_VOICES if engine == "flite" else FESTIVAL_VOICES
        voice = names[int(rng.integers(len(names)))]
        pitch_st, rate = float(rng.uniform(-4, 4)), float(rng.uniform(0.85, 1.15))
    vtl = float(rng.uniform(0.9, 1.1))
    word_gap = int(rng.integers(0, 3))
    pool = POOLS[POOL_OF_LANG[lang]]
    n_wake = int(rng.integers(2, 4)) if n_wake is None else n_wake
    wake = [pool.wake[i] for i in sorted(rng.choice(len(pool.wake), size=min(n_wake, len(pool.wake)), replace=False))]
    conf = confusables(wake, pool, lang, rng)[:max(1, round(0.4 * n_others))] if n_others else []
    foreign_wake = [p for p in pool.wake if p not in wake]
    foreign_wake = [foreign_wake[i] for i in rng.permutation(len(foreign_wake))][:min(3, max(0, n_others - len(conf)))]
    everyday = [pool.other[i] for i in rng.permutation(len(pool.other))]
    others: list[str] = []
    for p in conf + foreign_wake + everyday:
        if len(others) >= n_others:
            break
        if p not in others and p not in wake:
            others.append(p)
    return SpeakerSpec(index, engine, voice, lang, pitch_st, rate, vtl, word_gap, tuple(wake), tuple(others))


# ---------------------------------------------------------------- takes

@dataclass(frozen=True)
class Take:
    """The per-take jitter around a speaker's own values (recorded in the manifest)."""
    rate: float
    pitch_st: float
    amplitude: float
    word_gap: int
    peak_dbfs: float
    lead_s: float
    tail_s: float

    def describe(self) -> str:
        return (f"rate{self.rate:.2f},pitch{self.pitch_st:+.1f}st,amp{self.amplitude:.2f},gap{self.word_gap},"
                f"peak{self.peak_dbfs:.1f}dBFS")


def draw_take(spec: SpeakerSpec, rng: np.random.Generator) -> Take:
    return Take(rate=spec.rate * float(rng.uniform(0.9, 1.1)),
                pitch_st=spec.pitch_st + float(rng.uniform(-1.0, 1.0)),
                amplitude=float(rng.uniform(0.8, 1.2)),
                word_gap=max(0, spec.word_gap + int(rng.integers(-1, 3))),
                peak_dbfs=float(rng.uniform(-6, -1)),
                lead_s=float(rng.uniform(0.1, 0.3)), tail_s=float(rng.uniform(0.1, 0.3)))


def trim(y: np.ndarray, floor_db: float = -45.0, frame: int = 160) -> np.ndarray:
    """Cut leading and trailing frames quieter than floor_db below the peak (engines pad unevenly)."""
    n = len(y) // frame
    if n == 0:
        return y
    rms = np.sqrt(np.mean(y[:n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(rms / (rms.max() + 1e-12)) > floor_db)
    if len(loud) == 0:
        return y
    return y[loud[0] * frame:(loud[-1] + 1) * frame]


def render_take(spec: SpeakerSpec, text: str, rng: np.random.Generator) -> tuple[np.ndarray, Take]:
    """One take of text by this speaker: jittered prosody, the speaker's vocal tract, trimmed and padded
    with silence like the real trimmed clips (0.1-0.3 s), a faint noise floor (real recordings never
    have digital silence), and a peak level."""
    take = draw_take(spec, rng)
    # the vtl resampling speeds up and raises pitch by vtl: ask the engine for the opposite
    y = render(spec.engine, spec.voice, text, rate=take.rate / spec.vtl,
               pitch_st=take.pitch_st - 12 * math.log2(spec.vtl), amplitude=take.amplitude, word_gap=take.word_gap)
    y = trim(speed(y, spec.vtl))
    y = np.concatenate([np.zeros(int(take.lead_s * SR), np.float32), y, np.zeros(int(take.tail_s * SR), np.float32)])
    y = peak_normalise(y, 0.0)
    y = y + (10 ** (rng.uniform(-70, -55) / 20) * rng.standard_normal(len(y))).astype(np.float32)
    return peak_normalise(y, take.peak_dbfs), take
