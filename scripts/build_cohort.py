#!/usr/bin/env python3
"""Build pretrained/cohort.npz: impostor utterances every profile is normalised against.

    python scripts/build_cohort.py --words ../shared/data/words --noise build/train-noise
    python scripts/build_cohort.py --voiceprints     # pretrained/cohort_voiceprints_encoder.npz only
    python scripts/build_cohort.py --voiceprints trunk   # pretrained/cohort_voiceprints_trunk.npz only

Uses the train split only, and only its cohort half of the speakers (see word_corpus.split_speakers),
so calibration tasks built from the other half stay unseen. Utterances are 1-3 words of one
speaker with pauses, noise and gain like the platform's test clips. Deterministic for a --seed.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from kws.scoring.cohort import COHORT_FILE, ENCODER_VOICEPRINTS_FILE, TRUNK_VOICEPRINTS_FILE, Cohort
from kws.config import DEFAULT, FRONTENDS, PRETRAINED_DIR, Config, with_frontend
from kws.scoring.detect import prepare
from kws.nn.encoder import embed_speakers, frontend_fingerprint, load_multitask, load_trunk_projection, speaker_embeddings
from noise_rule import TRAIN_NOISE_DIR, check_training_noise
from word_corpus import Words, augment, held_out_langs, load_noise, split_speakers, utterance

log = logging.getLogger("build_cohort")
COUNT, SEED = 400, 11   # the shipped cohort's utterances (--count, --seed)


def cohort_speakers(words: Words, held: set[str] = frozenset()) -> list[str]:
    """The train speakers the cohort is drawn from: the cohort half, without held-out languages."""
    return [s for s in split_speakers(words.speakers)[0] if words.lang[s] not in held]


def cohort_utterances(rng: np.random.Generator, words: Words, speakers: list[str], noise: list[np.ndarray],
                      cfg: Config, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(keyword frames, speech crops) of the cohort's utterances, drawn from rng in turn over the speakers
    (eval_speaker.py --ge2e draws them again, with the same seed, to embed them with other GE2E weights)."""
    frames, crops = [], []
    for i in range(count):
        spk = speakers[i % len(speakers)]
        y = augment(rng, noise, utterance(rng, words, spk, int(rng.integers(1, 4))))
        p = prepare(y, cfg)
        frames.append(p.frames)
        crops.append(p.audio)
        if (i + 1) % 100 == 0:
            log.info("%d/%d utterances", i + 1, count)
    return frames, crops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", default="../shared/data/words")
    ap.add_argument("--noise", default=TRAIN_NOISE_DIR, help="training noise (never the dev noise)")
    ap.add_argument("--count", type=int, default=COUNT)
    ap.add_argument("--templates", type=int, default=100)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--frontend", default=DEFAULT.features.frontend, choices=FRONTENDS)
    ap.add_argument("--voiceprints", nargs="?", const="encoder", choices=("encoder", "trunk"),
                    help=f"write only pretrained/{ENCODER_VOICEPRINTS_FILE} (encoder, the default) or "
                    f"{TRUNK_VOICEPRINTS_FILE} (trunk): that voiceprint's embeddings of the same utterances")
    ap.add_argument("--out", default=None, help="default: pretrained/cohort.npz (mfcc) or cohort_encoder.npz")
    ap.add_argument("--int8", action="store_true", help="keyword frames as int8 unit rows (half the size; "
                    "cohort_encoder.npz since v9, to keep pretrained/ under 12 MB)")
    ap.add_argument("--hold-out", default="", help="languages whose speakers stay out of the cohort (e.g. ar)")
    a = ap.parse_args()
    cfg = with_frontend(a.frontend)
    vp_file = TRUNK_VOICEPRINTS_FILE if a.voiceprints == "trunk" else ENCODER_VOICEPRINTS_FILE
    a.out = a.out or str(PRETRAINED_DIR / (vp_file if a.voiceprints else cfg.features.artefact(COHORT_FILE)))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    words = Words(Path(a.words), "train")
    held = held_out_langs(a.hold_out)
    speakers = cohort_speakers(words, held)
    noise = load_noise(check_training_noise(a.noise))
    rng = np.random.default_rng(a.seed)
    frames, crops = cohort_utterances(rng, words, speakers, noise, cfg, a.count)
    if a.voiceprints:   # the utterances above are the cohort's (same seed, drawn before the templates)
        emb = speaker_embeddings(crops, a.voiceprints, cfg.features)
        m = load_multitask()
        made_with = load_trunk_projection(m.sha).sha if a.voiceprints == "trunk" else m.sha
        np.savez_compressed(a.out, speaker_embeddings=emb.astype(np.float16), encoder_sha=np.array(made_with))
        log.info("wrote %s: %d %s voiceprints", a.out, len(emb), a.voiceprints)
        return
    templates = []
    for i in range(a.templates):
        spk = speakers[i % len(speakers)]
        y = words.load(words.clips[spk][int(rng.integers(len(words.clips[spk])))])
        templates.append(prepare(augment(rng, [], y), cfg, pad_ms=cfg.enroll.template_pad_ms).frames)
    emb = embed_speakers(crops)
    np.savez_compressed(a.out, **Cohort.pack(frames, templates, emb, frontend_fingerprint(cfg.features), a.int8))
    log.info("wrote %s: %d utterances from %d speakers, %d frames", a.out, len(frames), len(speakers),
             sum(len(f) for f in frames))


if __name__ == "__main__":
    main()
