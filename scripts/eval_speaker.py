#!/usr/bin/env python3
"""Speaker verification on dev speakers' short utterances, as the detector meets them.

    python scripts/eval_speaker.py --words ../shared/data/words --noise ../shared/data/noise \
        [--split dev] [--seed 3] [--ge2e FILE] --out docs/speaker_eval.json

Each dev speaker enrolls a 1-2-word phrase with five takes (clean, as at enrollment). Trials are 1-2-word
test utterances (the phrase's other takes and other words) by the enrolled speaker (targets) and by every
other dev speaker (impostors; those of the same corpus also say the same phrase), clean and with dev noise
(`noise/`, measuring only) at 0-10 dB. For each voiceprint (GE2E, the multi-task encoder's, both, the trunk's) and each
scoring rule it reports the EER, the false-accept rate at a 5 % miss, and that rate on the impostors who
say the phrase. Nothing is fitted: the cohort is the shipped one (train-split speakers). --ge2e measures other
GE2E layers (scripts/train_voiceprint.py --out): the cohort's utterances are drawn again as build_cohort.py drew
them (train noise from --train-noise) and embedded with those layers.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augment import load_noise, mix_at_snr, noise_segment, peak_normalise
from kws.config import DEFAULT, SAMPLE_RATE, with_frontend
from kws.harness.report import eer, rates_at
from kws.nn.encoder import embed_speakers, load_ge2e, load_multitask, speaker_embeddings
from kws.scoring.cohort import load_cohort
from kws.scoring.voiceprint import snorm, unit, voiceprint
from noise_rule import TRAIN_NOISE_DIR, check_training_noise
from word_corpus import Words

log = logging.getLogger("eval_speaker")
SR = SAMPLE_RATE
MISS = 0.05              # the operating point reported beside the EER
VOICEPRINTS = ("ge2e", "encoder", "trunk")
BOTH = ("ge2e", "encoder")   # what the "both" voiceprint concatenates


@dataclass
class Take:
    speaker: str
    corpus: str
    words: tuple[str, ...]
    audio: np.ndarray


def say(words: Words, rng: np.random.Generator, speaker: str, phrase: tuple[str, ...], exclude: set[str]) -> Take:
    """One take of the phrase by the speaker, a recording not in `exclude` for each word (added to it)."""
    pieces = [np.zeros(int(rng.uniform(0.2, 0.5) * SR), np.float32)]
    for k, w in enumerate(phrase):
        pool = [p for p in words.by_word[speaker][w] if p not in exclude] or words.by_word[speaker][w]
        path = pool[int(rng.integers(len(pool)))]
        exclude.add(path)
        if k:
            pieces.append(np.zeros(int(rng.uniform(0.05, 0.25) * SR), np.float32))
        pieces.append(words.load(path))
    pieces.append(np.zeros(int(rng.uniform(0.2, 0.5) * SR), np.float32))
    return Take(speaker, words.corpus[speaker], phrase, np.concatenate(pieces))


def build(words: Words, rng: np.random.Generator, phrases: int) -> tuple[list[tuple[Take, list[Take]]], list[Take]]:
    """(enrollments: (phrase, its five takes), test utterances). Per enrollment the speaker also says the
    phrase twice more and four other 1-2-word utterances; each same-corpus speaker says it twice."""
    enrollments, tests = [], []
    for spk in words.speakers:
        vocab = sorted(words.by_word[spk])
        for _ in range(phrases):
            phrase = tuple(rng.choice(vocab, size=int(rng.integers(1, 3)), replace=False))
            used: set[str] = set()
            takes = [say(words, rng, spk, phrase, used) for _ in range(5)]
            enrollments.append((takes[0], takes))
            tests += [say(words, rng, spk, phrase, used) for _ in range(2)]
            for other in words.speakers:
                if other != spk and words.corpus[other] == words.corpus[spk]:
                    tests += [say(words, rng, other, phrase, set()) for _ in range(2)]
            for _ in range(4):
                tests.append(say(words, rng, spk, tuple(rng.choice(vocab, size=int(rng.integers(1, 3)),
                                                                   replace=False)), set()))
    return enrollments, tests


def noisy(tests: list[Take], noise: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for t in tests:
        seg = noise_segment(noise[int(rng.integers(len(noise)))], len(t.audio), rng)
        out.append(peak_normalise(mix_at_snr(t.audio, seg, rng.uniform(0, 10)), rng.uniform(-14, -2)))
    return out


def systems(enroll_emb: dict[str, np.ndarray], test_emb: dict[str, np.ndarray],
            cohort: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """(E, T) trial scores of every voiceprint x rule. enroll_emb[v]: (E, 5, D) the takes' unit embeddings."""
    out = {}
    # "both": the detector's concatenation of the two unit embeddings (DetectConfig.voiceprint="both")
    enroll_emb = {**enroll_emb, "both": np.concatenate([enroll_emb[v] for v in BOTH], axis=2) / np.sqrt(2)}
    test_emb, cohort = ({**d, "both": np.concatenate([unit(d[v]) for v in BOTH], axis=1) / np.sqrt(2)}
                        for d in (test_emb, cohort))
    for v in (*VOICEPRINTS, "both"):
        takes, test, coh = enroll_emb[v], unit(test_emb[v]), unit(cohort[v])
        vp = np.stack([voiceprint(t) for t in takes])                 # (E, D)
        raw = vp @ test.T
        out[f"{v}/mean"] = raw
        enroll_coh, test_coh = vp @ coh.T, test @ coh.T
        out[f"{v}/mean+z"] = (raw - enroll_coh.mean(1)[:, None]) / (enroll_coh.std(1)[:, None] + 1e-6)  # the detector's spk_seg_z
        out[f"{v}/mean+s"] = snorm(raw, enroll_coh, test_coh, None)
        out[f"{v}/mean+as"] = snorm(raw, enroll_coh, test_coh, 100)
        per_take = np.einsum("ekd,td->ekt", takes, test)               # each take apart
        take_coh = np.einsum("ekd,cd->ekc", takes, coh)
        normed = np.stack([snorm(per_take[:, k], take_coh[:, k], test_coh, 100) for k in range(takes.shape[1])])
        out[f"{v}/takes+as"] = normed.mean(axis=0)
        out[f"{v}/maxtake+as"] = normed.max(axis=0)
    for rule in ("mean", "mean+s", "mean+as", "takes+as"):
        out[f"ge2e+encoder/{rule}"] = 0.5 * (out[f"ge2e/{rule}"] + out[f"encoder/{rule}"])   # score fusion
    return out


def measure(scores: np.ndarray, target: np.ndarray, same_phrase: np.ndarray) -> dict[str, float]:
    s, t = scores.ravel(), target.ravel()
    thr = np.quantile(s[t], MISS)                       # 5 % of targets at or below it
    far, _ = rates_at(s, t.astype(int), thr)
    imp_phrase = s[same_phrase.ravel() & ~t]
    return {"eer": round(eer(s, t), 4), "far_at_5pct_miss": round(far, 4),
            "far_same_phrase_at_5pct_miss": round(float((imp_phrase > thr).mean()), 4) if len(imp_phrase) else None}


def trial_arguments(ap: argparse.ArgumentParser, phrases: int = 3, seed: int = 3) -> None:
    """The options that draw the trials (this script's, and eval_denoise.py's)."""
    ap.add_argument("--words", default="../shared/data/words")
    ap.add_argument("--noise", default="../shared/data/noise", help="dev noise (noise/): measuring only")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--phrases", type=int, default=phrases, help="enrollments per speaker")
    ap.add_argument("--seed", type=int, default=seed)
    ap.add_argument("--out", default=None, help="also write the result as JSON here")


def trials(a: argparse.Namespace) -> tuple[Words, list[tuple[Take, list[Take]]], list[Take], dict[str, list[np.ndarray]]]:
    """(words, enrollments, tests, the tests' audio by condition: clean, 0-10 dB), drawn from a --seed."""
    rng = np.random.default_rng(a.seed)
    words = Words(Path(a.words), a.split)
    enrollments, tests = build(words, rng, a.phrases)
    noise = load_noise(Path(a.noise))
    if not noise:
        raise SystemExit(f"{a.noise}: no FLAC or WAV noise recordings")
    return words, enrollments, tests, {"clean": [t.audio for t in tests], "0-10 dB": noisy(tests, noise, rng)}


def cohort_crops(words_dir: Path, train_noise: Path) -> list[np.ndarray]:
    """The speech crops of the shipped cohort's utterances, drawn again as build_cohort.py drew them."""
    from build_cohort import COUNT, SEED, cohort_speakers, cohort_utterances
    words = Words(words_dir, "train")
    return cohort_utterances(np.random.default_rng(SEED), words, cohort_speakers(words),
                             load_noise(check_training_noise(train_noise)), with_frontend(DEFAULT.features.frontend),
                             COUNT)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    trial_arguments(ap)
    ap.add_argument("--ge2e", default="", help="GE2E layers to measure instead of the shipped ones")
    ap.add_argument("--train-noise", default=TRAIN_NOISE_DIR, help="--ge2e: the noise the cohort was built with")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    words, enrollments, tests, conditions = trials(a)
    takes = [y.audio for _, ts in enrollments for y in ts]
    cohort = {v: load_cohort(cfg=DEFAULT.features, voiceprint=v).speaker_embeddings for v in VOICEPRINTS}

    def embed(wavs: list[np.ndarray], v: str) -> np.ndarray:
        return embed_speakers(wavs, load_ge2e(a.ge2e)) if v == "ge2e" and a.ge2e else \
            speaker_embeddings(wavs, v, DEFAULT.features)
    if a.ge2e:
        cohort["ge2e"] = embed(cohort_crops(Path(a.words), Path(a.train_noise)), "ge2e")
    enroll_emb = {v: unit(embed(takes, v)).reshape(len(enrollments), 5, -1) for v in VOICEPRINTS}
    target = np.array([[t.speaker == p.speaker for t in tests] for p, _ in enrollments])
    same_phrase = np.array([[t.words == p.words for t in tests] for p, _ in enrollments])
    result = {"split": a.split, "speakers": len(words.speakers), "enrollments": len(enrollments),
              "tests": len(tests), "trials": int(target.size), "targets": int(target.sum()),
              "impostor_same_phrase": int((same_phrase & ~target).sum()), "seed": a.seed,
              "encoder_sha": load_multitask().sha, "ge2e": a.ge2e or "shipped", "systems": {}}
    for cond, audio in conditions.items():
        test_emb = {v: embed(audio, v) for v in VOICEPRINTS}
        for name, s in systems(enroll_emb, test_emb, cohort).items():
            result["systems"].setdefault(name, {})[cond] = measure(s, target, same_phrase)
    for name, r in result["systems"].items():
        log.info("%-24s %s", name, "  ".join(f"{c}: EER {m['eer']:.3f} FA@5%miss {m['far_at_5pct_miss']:.3f}"
                                            for c, m in r.items()))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
