"""Helpers shared by the offline scripts: the word corpus, speaker halves, utterances, augmentation."""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


class Words:
    """manifest.tsv of ../shared/data/words, restricted to one split."""

    def __init__(self, folder: Path, split: str):
        self.folder = folder
        self.clips: dict[str, list[str]] = defaultdict(list)  # speaker -> paths
        with open(folder / "manifest.tsv", encoding="utf-8") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                if r["split"] == split:
                    self.clips[r["speaker"]].append(r["path"])
        self.speakers = sorted(self.clips)
        if not self.speakers:
            raise SystemExit(f"{folder}/manifest.tsv has no '{split}' rows")

    def load(self, path: str) -> np.ndarray:
        y, sr = sf.read(self.folder / path, dtype="float32", always_2d=True)
        assert sr == SR, path
        return y.mean(axis=1)


def split_speakers(speakers: list[str]) -> tuple[list[str], list[str]]:
    """(cohort half, calibration half): even and odd positions in sorted order."""
    s = sorted(speakers)
    return s[0::2], s[1::2]


def utterance(rng: np.random.Generator, words: Words, speaker: str, n_words: int) -> np.ndarray:
    pool = words.clips[speaker]
    pieces = [np.zeros(int(rng.uniform(0.2, 0.6) * SR), np.float32)]
    for k in range(n_words):
        if k:
            pieces.append(np.zeros(int(rng.uniform(0.05, 0.3) * SR), np.float32))
        pieces.append(words.load(pool[int(rng.integers(len(pool)))]))
    pieces.append(np.zeros(int(rng.uniform(0.2, 0.6) * SR), np.float32))
    return np.concatenate(pieces)


def load_noise(folder: Path) -> list[np.ndarray]:
    out = []
    for p in sorted(folder.glob("*.flac")) + sorted(folder.glob("*.wav")):
        y, sr = sf.read(p, dtype="float32", always_2d=True)
        assert sr == SR, p
        out.append(y.mean(axis=1))
    return out


def augment(rng: np.random.Generator, noise: list[np.ndarray], y: np.ndarray) -> np.ndarray:
    """Background noise at 5-25 dB SNR (60 % of the time) and a random peak level."""
    y = y.copy()
    if noise and rng.random() < 0.6:
        n = noise[int(rng.integers(len(noise)))]
        if len(n) <= len(y):
            n = np.tile(n, len(y) // len(n) + 1)
        s = int(rng.integers(0, len(n) - len(y) + 1))
        n = n[s:s + len(y)]
        snr = rng.uniform(5, 25)
        y = y + n * np.sqrt((np.mean(y ** 2) + 1e-10) / (np.mean(n ** 2) + 1e-10) / 10 ** (snr / 10))
    return (y / (np.abs(y).max() + 1e-9) * 10 ** (rng.uniform(-14, -2) / 20)).astype(np.float32)
