#!/usr/bin/env python3
"""Build the training and calibration noise bank: real outdoor noise, babble and synthetic noise.

    python scripts/build_train_noise.py --words ../shared/data/words --real ../shared/data/noise-train \\
        --out build/train-noise [--seed 3]

The noise rule (../shared/data/README.md): what trains or calibrates never hears ../shared/data/noise,
which is kept for dev sets, so that dev measures noise types the system has never met. This bank is
what every training and calibration script mixes in instead:
  real_*.flac     the outdoor recordings of noise-train/ (Berlin Noise, CC BY 4.0), copied;
  babble_*.flac   3-8 train-split speakers of the words corpus talking at once (other people's speech);
  synth_*.flac    coloured noise (white, pink, brown), mains hum with harmonics, a fan (low-passed,
                  slowly modulated noise) and a noisy room tone: stationary noise of every slope.
Deterministic for a --seed.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from augment import SR, load_noise_named, peak_normalise
from word_corpus import Words
from noise_rule import check_training_noise

log = logging.getLogger("build_train_noise")


def coloured(rng: np.random.Generator, n: int, slope: float) -> np.ndarray:
    """Noise whose power falls as f**-slope (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec *= np.where(f > 20, np.maximum(f, 20) ** (-slope / 2), 0.0)
    return np.fft.irfft(spec, n)


def hum(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mains hum (50 or 60 Hz) with decaying harmonics over a little broadband noise."""
    t = np.arange(n) / SR
    f0 = rng.choice([50.0, 60.0])
    y = sum(0.6 ** k * np.sin(2 * np.pi * f0 * (k + 1) * t + rng.uniform(0, 2 * np.pi)) for k in range(8))
    return y + 0.05 * coloured(rng, n, 1.0) / (np.std(coloured(rng, 4096, 1.0)) + 1e-9)


def fan(rng: np.random.Generator, n: int) -> np.ndarray:
    """Low-passed noise, slowly amplitude-modulated: a fan or an air conditioner."""
    y = coloured(rng, n, 1.5)
    t = np.arange(n) / SR
    return y * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 2.0) * t))


def babble(rng: np.random.Generator, words: Words, speakers: list[str], n: int) -> np.ndarray:
    """n samples of 3-8 speakers talking at once, each a stream of their words with short pauses."""
    talkers = rng.choice(speakers, size=int(rng.integers(3, 9)), replace=False)
    out = np.zeros(n, np.float64)
    for spk in talkers:
        stream, filled = np.zeros(n, np.float64), int(rng.integers(0, SR // 2))
        pool = words.clips[spk]
        while filled < n:
            y = words.load(pool[int(rng.integers(len(pool)))])
            y = y / (np.sqrt(np.mean(y ** 2)) + 1e-9)
            stop = min(n, filled + len(y))
            stream[filled:stop] = y[:stop - filled]
            filled = stop + int(rng.uniform(0.05, 0.4) * SR)
        out += stream * 10 ** (rng.uniform(-6, 0) / 20)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", default="../shared/data/words")
    ap.add_argument("--real", default="../shared/data/noise-train", help="real noise recordings for training")
    ap.add_argument("--out", default="build/train-noise")
    ap.add_argument("--babble", type=int, default=12, help="babble recordings")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each babble and synthetic recording")
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import soundfile as sf
    real = check_training_noise(a.real)
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = np.random.default_rng(a.seed)
    n = int(a.seconds * SR)
    made = []
    for stem, y in load_noise_named(real):
        made.append((f"real_{stem}", y))
    words = Words(Path(a.words), "train")
    speakers = [s for s in words.speakers if len(words.clips[s]) >= 20]   # enough words to talk for 30 s
    for k in range(a.babble):
        made.append((f"babble_{k:02d}", babble(rng, words, speakers, n)))
    for name, make in (("white", lambda: coloured(rng, n, 0.0)), ("pink", lambda: coloured(rng, n, 1.0)),
                       ("brown", lambda: coloured(rng, n, 2.0)), ("hum", lambda: hum(rng, n)),
                       ("fan", lambda: fan(rng, n)), ("room", lambda: coloured(rng, n, 0.7) * 0.3 + fan(rng, n))):
        made.append((f"synth_{name}", make()))
    for stem, y in made:
        sf.write(out / f"{stem}.flac", peak_normalise(np.asarray(y, np.float32), -3.0), SR, subtype="PCM_16")
    (out / "build_info.json").write_text(json.dumps(
        {"command": "python scripts/build_train_noise.py " + " ".join(f"--{k} {v}" for k, v in vars(a).items()),
         "files": [s for s, _ in made], "babble_speakers": len(speakers)}, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %d noise recordings to %s (%d real, %d babble, %d synthetic)", len(made), out,
             sum(s.startswith("real_") for s, _ in made), a.babble, sum(s.startswith("synth_") for s, _ in made))


if __name__ == "__main__":
    main()
