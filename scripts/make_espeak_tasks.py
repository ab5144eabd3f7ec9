#!/usr/bin/env python3
"""Synthesise a small task set in the official layout with espeak-ng voices (no real recordings needed).

    python scripts/make_espeak_tasks.py --out SCRATCH/espeak-tasks [--tasks 4] [--seed 3]

Each task: one synthetic speaker (voice variant, pitch, rate jittered per take) and a wake phrase;
5 enrollment takes; 5 positives (2 embedded in other speech); 45 negatives (same speaker's other
phrases, other speakers saying the phrase, other speakers' speech). Test clips get noise and gain.
Needs the Debian package espeak-ng.
"""
from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from augment import peak_normalise
from synth_speakers import espeak
from kws.config import SAMPLE_RATE

SR = SAMPLE_RATE
VOICES = ["en+m1", "en+f3", "en+m3", "en+f2", "en+m7", "en+f4"]
PHRASES = ["hello computer", "open sesame", "wake up buddy", "hey jasper", "okay lantern", "good morning robot"]
OTHER = ["what time is it", "turn on the lights", "play some music", "how is the weather", "call my mother",
         "set a timer", "the quick brown fox", "see you tomorrow", "where are my keys", "open the window",
         "good night", "hello there", "computer science", "morning coffee", "let us go"]


def say(text: str, voice: str, rng: np.random.Generator) -> np.ndarray:
    """One take with jittered rate and pitch (the same settings would give the same audio every time)."""
    wpm = int(rng.integers(135, 185))
    return espeak(text, voice, wpm, int(rng.integers(30, 70)))


def join(rng: np.random.Generator, pieces: list[np.ndarray]) -> np.ndarray:
    gap = lambda lo, hi: np.zeros(int(rng.uniform(lo, hi) * SR), np.float32)  # noqa: E731
    out = [gap(0.2, 0.5)]
    for i, p in enumerate(pieces):
        out += ([gap(0.05, 0.3)] if i else []) + [p]
    return np.concatenate(out + [gap(0.2, 0.5)])


def degrade(rng: np.random.Generator, y: np.ndarray, test: bool) -> np.ndarray:
    if test and rng.random() < 0.6:
        snr = rng.uniform(5, 25)
        n = rng.standard_normal(len(y)).astype(np.float32)
        y = y + n * np.sqrt(np.mean(y ** 2) / 10 ** (snr / 10))
    return peak_normalise(y, rng.uniform(-14, -2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    if not shutil.which("espeak-ng"):
        raise SystemExit("espeak-ng is not installed: apt-get install espeak-ng")
    out, meta = Path(a.out), []
    for t in range(a.tasks):
        rng = np.random.default_rng([a.seed, t])
        task = f"S{t + 1:04d}"
        voice, phrase = VOICES[t % len(VOICES)], PHRASES[t % len(PHRASES)]
        others = [v for v in VOICES if v != voice]
        tests = []
        for k in range(5):
            parts = [say(phrase, voice, rng)]
            if k >= 3:
                parts = [say(OTHER[int(rng.integers(len(OTHER)))], voice, rng)] + parts
            tests.append((parts, 1, "pos_embedded" if k >= 3 else "pos_plain"))
        for _ in range(25):
            tests.append(([say(OTHER[int(rng.integers(len(OTHER)))], voice, rng)], 0, "neg_same_speaker"))
        for _ in range(10):
            tests.append(([say(phrase, others[int(rng.integers(len(others)))], rng)], 0, "neg_other_speaker_phrase"))
        for _ in range(10):
            v = others[int(rng.integers(len(others)))]
            tests.append(([say(OTHER[int(rng.integers(len(OTHER)))], v, rng)], 0, "neg_other_speaker"))
        (out / "data" / task / "enroll").mkdir(parents=True, exist_ok=True)
        (out / "data" / task / "test").mkdir(parents=True, exist_ok=True)
        (out / "solution").mkdir(parents=True, exist_ok=True)
        for i in range(5):
            y = degrade(rng, join(rng, [say(phrase, voice, rng)]), test=False)
            sf.write(out / "data" / task / "enroll" / f"{task}E{i + 1:03d}.wav", y, SR, subtype="PCM_16")
        with open(out / "solution" / f"{task}_test_labels.txt", "w", encoding="utf-8") as lab:
            for n, j in enumerate(rng.permutation(len(tests)), 1):
                parts, label, kind = tests[j]
                y = degrade(rng, join(rng, parts), test=True)
                name = f"{task}T{n:04d}.wav"
                sf.write(out / "data" / task / "test" / name, y, SR, subtype="PCM_16")
                lab.write(f"{name}\t{label}\n")
                meta.append(dict(task=task, file=name, label=label, kind=kind))
        print(f"{task}: voice {voice}, phrase '{phrase}'", flush=True)
    with open(out / "test_meta.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(meta[0]), delimiter="\t")
        w.writeheader()
        w.writerows(meta)


if __name__ == "__main__":
    main()
