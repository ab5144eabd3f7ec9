#!/usr/bin/env python3
"""Tune GE2E to hear through noise: pretrained/ge2e_tuned.npz (the upper layers of the GE2E every voiceprint uses).

    python scripts/train_voiceprint.py --words ../shared/data/words --phrases ../shared/data/phrases \
        --noise build/train-noise [--steps 1500] [--first-layer 2] [--hold-out ar]

Teacher and student start as Resemblyzer's GE2E (kws.nn.encoder.load_ge2e_wheel). The teacher hears a clean utterance,
the student the same utterance in noise (build/train-noise at 0-20 dB: real outdoor noise, babble of
train speakers, synthetic noise; never ../shared/data/noise) and, a quarter of the time, clean; the student
learns to give the teacher's clean embedding (cosine loss). No speaker labels are needed, so what GE2E
learned from its thousands of speakers is kept and only its view of noise changes. Only the LSTM layers
from --first-layer up and the projection are trained; the file holds just those, and the SHA of the
wheel's weights it was tuned from (checked at load).

Utterances: 1-3 words of one speaker of the words corpus's cohort half (dsp20, asc) or Speech Commands
(as scripts/train_encoder.py: the calibration half of the task speakers stays unheard), and the phrases
corpus's takes. Deterministic for a --seed and --threads.

--speaker-weight W adds GE2E's own speaker loss (kws.training.model.ge2e_loss) on the student's noisy embeddings,
W times it: batches are then --speakers of those speakers, batch/--speakers utterances each (no phrase takes:
they have no speaker labels). Measured, not shipped (docs/results.md, v12): better noisy EER on eval_speaker's
trials, more other voices through the listener's veto on dev streams.
"""
from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path

import numpy as np
import torch

from augment import mix_at_snr, noise_segment
from kws.config import PRETRAINED_DIR, SAMPLE_RATE
from kws.nn.encoder import GE2E_TUNED_FILE, PARTIAL_FRAMES, ge2e_mels, ge2e_wheel_sha, load_ge2e_wheel
from kws.training.model import GE2ENet, ge2e_loss
from noise_rule import TRAIN_NOISE_DIR, check_training_noise
from word_corpus import Words, held_out_langs, load_noise, split_speakers, utterance

log = logging.getLogger("train_voiceprint")
SNR_DB = (0.0, 20.0)
CLEAN_SHARE = 0.25


def phrase_clips(folder: Path | None) -> list[Path]:
    if folder is None:
        return []
    with open(folder / "manifest.tsv", encoding="utf-8") as f:
        return [folder / r["path"] for r in csv.DictReader(f, delimiter="\t")]


class Source:
    """Clean utterances: 1-3 words of one training speaker, or one take of the phrases corpus."""

    def __init__(self, words: Words, speakers: list[str], phrases: list[Path]):
        self.words, self.speakers, self.phrases = words, speakers, phrases

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        if self.phrases and rng.random() < len(self.phrases) / (len(self.phrases) + 4 * len(self.speakers) * 20):
            from kws.signal.audio import read_audio
            y = read_audio(self.phrases[int(rng.integers(len(self.phrases)))])
            return np.concatenate([np.zeros(int(rng.uniform(0.1, 0.4) * SAMPLE_RATE), np.float32), y])
        return utterance(rng, self.words, self.speakers[int(rng.integers(len(self.speakers)))], int(rng.integers(1, 4)))


def pair(rng: np.random.Generator, source: Source, noise: list[np.ndarray], speaker: str | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """(clean, heard) GE2E mel frames of one utterance (of `speaker`, when given), cut at the same random
    place to one partial."""
    y = source.draw(rng) if speaker is None else utterance(rng, source.words, speaker, int(rng.integers(1, 4)))
    y = y / (np.abs(y).max() + 1e-6) * 10 ** (rng.uniform(-20, -2) / 20)
    heard = y if rng.random() < CLEAN_SHARE else \
        mix_at_snr(y, noise_segment(noise[int(rng.integers(len(noise)))], len(y), rng), rng.uniform(*SNR_DB))
    a, b = ge2e_mels(y), ge2e_mels(heard.astype(np.float32))
    if len(a) > PARTIAL_FRAMES:
        s = int(rng.integers(len(a) - PARTIAL_FRAMES + 1))
        a, b = a[s:s + PARTIAL_FRAMES], b[s:s + PARTIAL_FRAMES]
    return a, b


def batch(parts: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = np.array([len(p) for p in parts])
    x = np.zeros((len(parts), lengths.max(), parts[0].shape[1]), np.float32)
    for i, p in enumerate(parts):
        x[i, :len(p)] = p
    return torch.from_numpy(x), torch.from_numpy(lengths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", default="../shared/data/words")
    ap.add_argument("--phrases", default="", help="the phrases corpus (optional)")
    ap.add_argument("--noise", default=TRAIN_NOISE_DIR, help="training noise (never the dev noise)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--first-layer", type=int, default=2, help="LSTM layers from this one up are trained (0-2)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--hold-out", default="", help="languages whose speakers are never heard (e.g. ar)")
    ap.add_argument("--speaker-weight", type=float, default=0.0,
                    help="add GE2E's own speaker loss on the noisy utterances, this much of it (0: teacher-student "
                    "only); batches are then --speakers speakers x batch/--speakers utterances of the words corpus")
    ap.add_argument("--speakers", type=int, default=8)
    ap.add_argument("--out", default=str(PRETRAINED_DIR / GE2E_TUNED_FILE))
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    words = Words(Path(a.words), "train")
    held = held_out_langs(a.hold_out)
    cohort_half = set(split_speakers([s for s in words.speakers if words.corpus[s] != "gsc"])[0])
    speakers = [s for s in words.speakers if (s in cohort_half or words.corpus[s] == "gsc") and words.lang[s] not in held]
    source = Source(words, speakers, phrase_clips(Path(a.phrases)) if a.phrases else [])
    noise = load_noise(check_training_noise(a.noise))
    log.info("%d speakers, %d phrase takes, %d noise recordings", len(speakers), len(source.phrases), len(noise))

    runtime = load_ge2e_wheel()
    teacher, student = GE2ENet(), GE2ENet()
    teacher.load_runtime(runtime)
    student.load_runtime(runtime)
    teacher.eval()
    for name, p in student.named_parameters():
        p.requires_grad = name.startswith("linear") or int(name.rsplit("_l", 1)[1]) >= a.first_layer
    scale = torch.nn.Parameter(torch.tensor([10.0, -5.0]))   # GE2E's w and b, as its paper starts them
    opt = torch.optim.Adam([p for p in student.parameters() if p.requires_grad] + ([scale] if a.speaker_weight else []),
                           lr=a.lr)
    per = max(2, a.batch // a.speakers)
    start, recent = time.time(), []
    for step in range(1, a.steps + 1):
        if a.speaker_weight:
            who = rng.choice(len(speakers), size=a.speakers, replace=False)
            clean, heard = zip(*(pair(rng, source, noise, speakers[w]) for w in who for _ in range(per)))
        else:
            clean, heard = zip(*(pair(rng, source, noise) for _ in range(a.batch)))
        xc, lc = batch(list(clean))
        xh, lh = batch(list(heard))
        with torch.no_grad():
            target = teacher(xc, lc)
        emb = student(xh, lh)
        loss = (1 - (emb * target).sum(dim=1)).mean()
        if a.speaker_weight:
            loss = loss + a.speaker_weight * ge2e_loss(emb.reshape(a.speakers, per, -1), scale[0], scale[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
        recent.append(loss.item())
        if step % 50 == 0 or step == a.steps:
            log.info("step %d/%d: loss %.4f (last 50), %.0f s", step, a.steps, np.mean(recent[-50:]), time.time() - start)
    arrays = student.export_layers(a.first_layer)
    np.savez_compressed(a.out, **{k: v.astype(np.float16) for k, v in arrays.items()},
                        first_layer=np.array(a.first_layer), ge2e_sha=np.array(ge2e_wheel_sha()),
                        steps=np.array(a.steps), hold_out=np.array(a.hold_out),
                        **({"speaker_weight": np.array(a.speaker_weight)} if a.speaker_weight else {}))
    log.info("wrote %s (%d s)", a.out, time.time() - start)


if __name__ == "__main__":
    main()
