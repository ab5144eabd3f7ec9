#!/usr/bin/env python3
"""Frozen embeddings as a general speech representation, probed TRILL's way (issue 21).

    python scripts/probe.py --words ../shared/data/words --noise ../shared/data/noise-train --out docs/probe.json

Every candidate embedding stays frozen; a multinomial logistic regression (L2, standardised inputs, L-BFGS)
is trained on top and scored by accuracy on held-out clips. Candidates: MFCC mean and std, GE2E, each
block of the multi-task encoder's trunk (mean and std over time), its speaker head (the voiceprint) and its
keyword head (mean and std of the keyword frames). Tasks, with speakers apart wherever the task allows:
- speaker: the 10 dev speakers, takes split by repetition (the same voices on both sides: that is the task);
- language (zh / en / ar), word (the dsp20 words): probe trained on train-split speakers, tested on dev ones;
- noise type, SNR band, clean vs reverberant: train-split speech for training, dev speech for testing, with
  `noise-train` recordings (their first half for training, second half for testing: never `noise/`) and
  synthetic exponential-decay room responses (RT60 0.3-0.9 s).
Chance: the test set's majority class.
"""
from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from augment import load_noise_named, mix_at_snr, noise_segment, reverb
from kws.classify.logistic import Logistic
from kws.classify.views import Embedder
from kws.config import SAMPLE_RATE
from kws.nn.encoder import load_multitask
from word_corpus import Words

log = logging.getLogger("probe")
SR = SAMPLE_RATE
SNR_BANDS = ((0, 5), (5, 10), (10, 20), (20, 30))


# ---------------------------------------------------------------- the probe and the candidates

def logistic_probe(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, l2: float = 1e-2) -> np.ndarray:
    """Predicted classes of x_test from a multinomial logistic regression fitted on (x, y)."""
    return Logistic.fit(x, y, l2=l2, max_iter=500).predict(x_test)


def embeddings(wavs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every candidate's (N, D) embedding of the clips: kws classify's views."""
    return Embedder().embed(wavs)


# ---------------------------------------------------------------- the tasks

def pick(rng: np.random.Generator, n: int, words: Words, **where: object) -> list[dict]:
    """n random manifest rows of the split whose fields match `where` (a set: any of its values)."""
    rows = [r for r in words.rows if all((r[k] in v) if isinstance(v, (set, tuple)) else r[k] == v
                                         for k, v in where.items())]
    return [rows[i] for i in rng.choice(len(rows), min(n, len(rows)), replace=False)]


def rir(rng: np.random.Generator) -> np.ndarray:
    """A synthetic room response: exponentially decaying noise, RT60 0.3-0.9 s, after a direct path."""
    rt60 = rng.uniform(0.3, 0.9)
    t = np.arange(int(rt60 * SR)) / SR
    h = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60) * 0.3
    h[0] = 1.0
    return h.astype(np.float32)


def build_tasks(split: dict[str, Words], noise: list[tuple[str, np.ndarray]], rng: np.random.Generator,
                size: int) -> dict:
    """{task: (train wavs, train labels, test wavs, test labels)}; split: the words corpus's train and dev."""
    train, dev = split["train"], split["dev"]
    tasks = {}
    by_spk = defaultdict(list)
    for r in pick(rng, 10 ** 6, dev):
        by_spk[r["speaker"]].append(r)
    tr, te = [], []
    for spk, rows in by_spk.items():        # speaker ID: odd takes train, even takes test
        rows = [rows[i] for i in rng.permutation(len(rows))]
        tr += [r for r in rows if int(r["rep"]) % 2][: size // 10]
        te += [r for r in rows if not int(r["rep"]) % 2][: size // 20]
    tasks["speaker (10 dev speakers)"] = (tr, [r["speaker"] for r in tr], te, [r["speaker"] for r in te])
    per = size // 3
    tr = sum((pick(rng, per, train, corpus={"dsp20", "asc"}, lang=lang) for lang in ("zh", "en", "ar")), [])
    te = sum((pick(rng, per // 2, dev, lang=lang) for lang in ("zh", "en", "ar")), [])
    tasks["language (zh / en / ar)"] = (tr, [r["lang"] for r in tr], te, [r["lang"] for r in te])
    tr = pick(rng, size, train, corpus="dsp20")
    te = pick(rng, size // 2, dev, corpus="dsp20")
    tasks["word (20 dsp20 words)"] = (tr, [r["word"] for r in tr], te, [r["word"] for r in te])
    out = {k: ([train.load(r["path"]) for r in a], b, [dev.load(r["path"]) for r in c], d)
           for k, (a, b, c, d) in tasks.items()}

    halves = {name: (y[: len(y) // 2], y[len(y) // 2:]) for name, y in noise}
    names = sorted(halves)
    sides = []                               # (wavs, labels) of each condition task: train side, then test side
    for words, side, n in ((train, 0, size), (dev, 1, size // 2)):
        noisy, ntype, band, wet, room = [], [], [], [], []
        for row in pick(rng, n, words, corpus={"dsp20", "asc"}):
            y = words.load(row["path"])
            name = names[int(rng.integers(len(names)))]
            b = int(rng.integers(len(SNR_BANDS)))
            seg = noise_segment(halves[name][side], len(y), rng)
            noisy.append(mix_at_snr(y, seg, rng.uniform(*SNR_BANDS[b])))
            ntype.append(name)
            band.append(f"{SNR_BANDS[b][0]}-{SNR_BANDS[b][1]} dB")
            wet_room = bool(rng.random() < 0.5)
            wet.append(reverb(y, rir(rng)) if wet_room else y)
            room.append("reverberant" if wet_room else "clean")
        sides.append({"noise type (noise-train recordings)": (noisy, ntype), "SNR band": (noisy, band),
                      "clean vs reverberant": (wet, room)})
    for task in sides[0]:
        out[task] = (*sides[0][task], *sides[1][task])
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", default="../shared/data/words")
    ap.add_argument("--noise", default="../shared/data/noise-train", help="noise-train (never the dev noise/)")
    ap.add_argument("--size", type=int, default=400, help="training clips per task (tests: half as many)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    noise = load_noise_named(Path(a.noise))
    if not noise:
        raise SystemExit(f"{a.noise}: no noise recordings")
    rng = np.random.default_rng(a.seed)
    tasks = build_tasks({sp: Words(Path(a.words), sp) for sp in ("train", "dev")}, noise, rng, a.size)
    result = {"seed": a.seed, "encoder_sha": load_multitask().sha, "tasks": {}}
    for task, (xtr, ytr, xte, yte) in tasks.items():
        etr, ete = embeddings(xtr), embeddings(xte)
        ytr, yte = np.array(ytr), np.array(yte)
        counts = {c: int((yte == c).sum()) for c in np.unique(yte)}
        row = {"train": len(ytr), "test": len(yte), "classes": len(np.unique(ytr)),
               "chance": round(max(counts.values()) / len(yte), 3), "accuracy": {}}
        for cand in etr:
            row["accuracy"][cand] = round(float((logistic_probe(etr[cand], ytr, ete[cand]) == yte).mean()), 3)
        log.info("%s: chance %.3f; %s", task, row["chance"], ", ".join(f"{k} {v:.3f}" for k, v in row["accuracy"].items()))
        result["tasks"][task] = row
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
