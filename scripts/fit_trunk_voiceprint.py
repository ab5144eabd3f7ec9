#!/usr/bin/env python3
"""Fit pretrained/voiceprint_trunk.npz: the "trunk" voiceprint's LDA over a trunk block's statistics.

    python scripts/fit_trunk_voiceprint.py --words ../shared/data/words --noise build/train-noise

The probes (docs/representation.md) found the encoder's second trunk block tells new voices apart
better than its speaker head. This turns that block's mean and std over time into a voiceprint: centred,
then projected by a linear discriminant analysis fitted on the cohort half of the train-split task
speakers (DSPSpeech-20 and Arabic speech commands; the calibration half stays unseen, as for the encoder
and the cohort). Speech Commands speakers are left out: a handful of one-second words each, and with
them the LDA measured worse on the calibration-half speakers' trials (19.2 % EER clean against 15.9 %;
docs/representation.md). Each utterance (1-3 words of one speaker, cropped by the VAD as
prediction crops) is taken clean and mixed with training noise at 0-25 dB: the noise rule's
augmentation, which the first study's LDA lacked. Deterministic for a --seed.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from scipy.linalg import eigh

from kws.config import DEFAULT, PRETRAINED_DIR
from kws.nn.encoder import TRUNK_VOICEPRINT_FILE, load_multitask, trunk_statistics
from kws.scoring.detect import prepare
from kws.signal.features import encoder_input
from noise_rule import TRAIN_NOISE_DIR, check_training_noise
from word_corpus import Words, held_out_langs, load_noise, mix_at_snr, noise_segment, peak_normalise, split_speakers, utterance

log = logging.getLogger("fit_trunk_voiceprint")


def lda(x: np.ndarray, owner: np.ndarray, dims: int, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean, projection): the directions that best separate the owners' means against their spread."""
    mean = x.mean(axis=0)
    xc = x - mean
    groups = np.unique(owner)
    means = np.stack([xc[owner == k].mean(axis=0) for k in groups])
    within = sum(np.cov((xc[owner == k] - means[i]).T) for i, k in enumerate(groups)) / len(groups)
    within = within + ridge * np.eye(x.shape[1])     # a few utterances per speaker: keep it invertible
    _, vectors = eigh(np.cov(means.T), within)
    return mean, vectors[:, ::-1][:, :dims]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", default="../shared/data/words")
    ap.add_argument("--noise", default=TRAIN_NOISE_DIR, help="training noise (never the dev noise)")
    ap.add_argument("--utterances", type=int, default=2000, help="clean utterances; each is also taken noisy")
    ap.add_argument("--block", type=int, default=2, help="the trunk block whose output is pooled (1-based)")
    ap.add_argument("--dims", type=int, default=30)
    ap.add_argument("--ridge", type=float, default=1e-2, help="added to the within-speaker covariance's diagonal")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--hold-out", default="", help="languages whose speakers stay out (e.g. ar)")
    ap.add_argument("--out", default=str(PRETRAINED_DIR / TRUNK_VOICEPRINT_FILE))
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    words = Words(Path(a.words), "train")
    held = held_out_langs(a.hold_out)
    keep = set(split_speakers(words.speakers)[0])     # the cohort half, as scripts/train_encoder.py splits them
    speakers = [s for s in words.speakers if s in keep and words.corpus[s] != "gsc" and words.lang[s] not in held]
    noise = load_noise(check_training_noise(a.noise))
    m, rng = load_multitask(), np.random.default_rng(a.seed)
    stats, owner = [], []
    for i in range(a.utterances):
        k = i % len(speakers)
        y = utterance(rng, words, speakers[k], int(rng.integers(1, 4)))
        seg = noise_segment(noise[int(rng.integers(len(noise)))], len(y), rng)
        for take in (peak_normalise(y, rng.uniform(-14, -2)),
                     peak_normalise(mix_at_snr(y, seg, rng.uniform(0, 25)), rng.uniform(-14, -2))):
            stats.append(trunk_statistics(m, encoder_input(prepare(take, DEFAULT).audio, DEFAULT.features), a.block))
            owner.append(k)
        if (i + 1) % 250 == 0:
            log.info("%d/%d utterances", i + 1, a.utterances)
    mean, projection = lda(np.array(stats, np.float64), np.array(owner), a.dims, a.ridge)
    provenance = {"command": "python scripts/fit_trunk_voiceprint.py " + " ".join(
                      f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if k != "out"),
                  "speakers": len(speakers), "utterances": len(stats), "encoder_sha": m.sha}
    np.savez_compressed(a.out, blocks=np.array(a.block), mean=mean.astype(np.float32),
                        projection=projection.astype(np.float32), encoder_sha=np.array(m.sha),
                        provenance=np.array(json.dumps(provenance)))
    log.info("wrote %s: block %d, %d -> %d dims, %d utterances of %d speakers", a.out, a.block, len(mean),
             a.dims, len(stats), len(speakers))


if __name__ == "__main__":
    main()
