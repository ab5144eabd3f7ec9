"""Helpers shared by the offline scripts: the word corpus, speaker halves, utterances, light augmentation.

The augmentation primitives live in scripts/augment.py; `augment` here is the cohort and calibration
recipe built from them (its random draws are kept in their original order, so the artefacts rebuild
byte for byte).
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from augment import load_noise, mix_at_snr, noise_segment, peak_normalise  # noqa: F401 (load_noise re-exported)
from kws.config import SAMPLE_RATE

SR = SAMPLE_RATE


class Words:
    """manifest.tsv of ../shared/data/words, restricted to one split."""

    def __init__(self, folder: Path, split: str):
        self.folder = folder
        self.rows: list[dict[str, str]] = []                   # the split's manifest rows, in file order
        self.clips: dict[str, list[str]] = defaultdict(list)  # speaker -> paths
        self.by_word: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))  # speaker -> word -> paths
        self.lang: dict[str, str] = {}                         # speaker -> language of their words
        self.corpus: dict[str, str] = {}                       # speaker -> corpus
        with open(folder / "manifest.tsv", encoding="utf-8") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                if r["split"] == split:
                    self.rows.append(r)
                    self.clips[r["speaker"]].append(r["path"])
                    self.by_word[r["speaker"]][r["word"]].append(r["path"])
                    self.lang[r["speaker"]] = r["lang"]
                    self.corpus[r["speaker"]] = r["corpus"]
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


def unheard_speakers(speakers: list[str], corpus: dict[str, str]) -> set[str]:
    """Of train-split speakers, those no trained part heard: the calibration half of the task corpora (the
    encoder, GE2E's tuning and the cohorts heard the other half, and Speech Commands whole)."""
    return set(split_speakers([s for s in speakers if corpus[s] != "gsc"])[1])


def held_out_langs(text: str) -> set[str]:
    """--hold-out ar[,zh]: languages kept out of training, to measure one the system has never met.
    Speakers are dropped after split_speakers, so the halves of the others stay as they were."""
    return {x for x in text.split(",") if x}


def utterance(rng: np.random.Generator, words: Words, speaker: str, n_words: int) -> np.ndarray:
    pool = words.clips[speaker]
    pieces = [np.zeros(int(rng.uniform(0.2, 0.6) * SR), np.float32)]
    for k in range(n_words):
        if k:
            pieces.append(np.zeros(int(rng.uniform(0.05, 0.3) * SR), np.float32))
        pieces.append(words.load(pool[int(rng.integers(len(pool)))]))
    pieces.append(np.zeros(int(rng.uniform(0.2, 0.6) * SR), np.float32))
    return np.concatenate(pieces)


def augment(rng: np.random.Generator, noise: list[np.ndarray], y: np.ndarray, p_noise: float = 0.6,
            snr: tuple[float, float] = (0.0, 25.0)) -> np.ndarray:
    """Background noise at `snr` dB (0-25 by default; `p_noise` of the time) and a random peak level."""
    if noise and rng.random() < p_noise:
        seg = noise_segment(noise[int(rng.integers(len(noise)))], len(y), rng)
        y = mix_at_snr(y, seg, rng.uniform(*snr))
    return peak_normalise(y, rng.uniform(-14, -2))
