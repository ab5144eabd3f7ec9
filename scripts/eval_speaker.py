#!/usr/bin/env python3
"""Speaker verification equal error rate on dev speakers: GE2E vs the multi-task encoder's voiceprint.

    python scripts/eval_speaker.py --words ../shared/data/words [--split dev] [--per-speaker 12]

Each trial utterance is 1-3 words of one speaker (like a test clip's speech); every pair of
utterances is a trial, a target when both come from the same speaker. Prints and returns EERs.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from kws.config import DEFAULT
from kws.nn.encoder import load_multitask, speaker_embeddings
from kws.harness.report import eer
from kws.scoring.voiceprint import unit
from word_corpus import Words, utterance

log = logging.getLogger("eval_speaker")


def trials(emb: np.ndarray, speakers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    e = unit(emb)
    sim = e @ e.T
    iu = np.triu_indices(len(e), 1)
    spk = np.array(speakers)
    return sim[iu], spk[iu[0]] == spk[iu[1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", default="../shared/data/words")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--per-speaker", type=int, default=12)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", default=None, help="also write the result as JSON here")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    words = Words(Path(a.words), a.split)
    rng = np.random.default_rng(a.seed)
    clips, owners = [], []
    for spk in words.speakers:
        for _ in range(a.per_speaker):
            clips.append(utterance(rng, words, spk, int(rng.integers(1, 4))))
            owners.append(spk)
    # the detector's own voiceprints (DetectConfig.voiceprint); "both" is reported as ge2e+encoder
    systems = {name: speaker_embeddings(clips, kind, DEFAULT.features)
               for name, kind in (("ge2e", "ge2e"), ("encoder", "encoder"), ("ge2e+encoder", "both"))}
    result = {"split": a.split, "speakers": len(words.speakers), "utterances": len(clips),
              "encoder_sha": load_multitask().sha}
    for name, emb in systems.items():
        s, t = trials(emb, owners)
        result[f"eer_{name}"] = round(eer(s, t), 4)
    result["trials"] = int(len(s))
    print(json.dumps(result))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
