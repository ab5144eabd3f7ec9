#!/usr/bin/env python3
"""Train the multi-task encoder (kws/model.py) and export pretrained/encoder.npz.

    python scripts/train_encoder.py --words ../shared/data/words --noise build/train-noise \
        [--trainset SCRATCH/kws-trainset] --work SCRATCH/encoder-run [--steps 3000]
    torchrun --nproc_per_node 4 scripts/train_encoder.py ...     # the same script, DDP on gloo

Data (load_items): the cohort half of the words corpus's train speakers, every Speech Commands
train speaker (they never make a calibration task), the phrases corpus with --phrases (keyword
losses only: no speaker ids) and, with --trainset, the synthetic speakers of
scripts/build_training_set.py. The calibration half of the task speakers stays unseen, so the
calibration fitted later sees new voices, as dev and the platform do. Each clip is used clean and with noise
(--noisy-copies: more noisy versions, always noisy at --hard-snr; measured in docs/results.md, v16).

Losses, summed:
- speaker: additive angular margin softmax over the training speakers (speaker head);
- word: cross-entropy over words/phrases from the pooled keyword frames (keyword head);
- frames: InfoNCE along DTW alignment paths between two takes of the same word, preferably
  by different speakers: aligned keyword frames must be closer than every other frame of the
  other take and of a take of another word (the alignment comes from MFCC DTW, fixed; with --align-clean,
  from each clip's clean version).
Checkpoints every --ckpt-every steps in --work; a rerun resumes from the last one.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from kws.scoring import dtw
from kws.config import DEFAULT, PRETRAINED_DIR
from kws.nn.encoder import ENCODER_FILE
from kws.signal.features import cmvn, encoder_input, mfcc
from kws.training.model import EncoderShape, MultiTaskEncoder, export_arrays
from kws.app.progress import Progress
from kws.signal.vad import speech_segments
from noise_rule import TRAIN_NOISE_DIR, check_training_noise
from word_corpus import Words, augment, held_out_langs, load_noise, split_speakers

log = logging.getLogger("train_encoder")
REAL_CORPORA = ("dsp20", "asc")
MAX_FRAMES = 200          # 2 s: longer clips are cut at a random offset


def load_items(words_dir: Path, trainset: Path | None, phrases_dir: Path | None = None,
               held_out: set[str] = frozenset()) -> list[dict]:
    """(path, loader key, speaker, text) for every training clip, in a fixed order.

    Real speech: the cohort half of the words corpus's train speakers, every Speech Commands (gsc)
    train speaker (one take per word: they never make a calibration task, so the calibration half of
    the task speakers stays unseen), and the phrases corpus (no speaker ids: speaker=None, keyword
    losses only). Clips in a held-out language are left out (word_corpus.held_out_langs)."""
    words = Words(words_dir, "train")
    keep = set(split_speakers(words.speakers)[0])
    items = []
    with open(words_dir / "manifest.tsv", encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["split"] == "train" and (r["speaker"] in keep or r["corpus"] == "gsc") and r["lang"] not in held_out:
                items.append({"path": str(words_dir / r["path"]), "speaker": r["speaker"],
                              "text": f"{r['lang']}:{r['word']}", "crop": False})
    if phrases_dir:
        with open(phrases_dir / "manifest.tsv", encoding="utf-8") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                if r["lang"] in held_out:
                    continue
                items.append({"path": str(phrases_dir / r["path"]), "speaker": None,
                              "text": f"{r['lang']}:{r['phrase']}", "crop": False})
    if trainset:
        with open(trainset / "manifest.tsv", encoding="utf-8") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                if r["source"] not in REAL_CORPORA and r["lang"] not in held_out:   # real speakers: --words, halved
                    items.append({"path": str(trainset / r["path"]), "speaker": f"syn:{r['speaker']}",
                                  "text": f"{r['lang']}:{r['text']}", "crop": True})
    return items


@dataclass(frozen=True)
class Versions:
    """How each clip is featurised: clean, then `copies` noisy versions, the first as `augment` makes it and each
    further one always noisy at `hard_snr`; with `align_clean`, every version aligns by the clean clip's MFCC frames,
    so that DTW paths (and two versions of one clip, aligned frame to frame) are not bent by noise."""
    copies: int = 1
    hard_snr: tuple[float, float] = (0.0, 25.0)
    align_clean: bool = False


def featurize(item: dict, noise: list[np.ndarray], seed: int, versions: Versions = Versions()
              ) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(encoder input, MFCC alignment frames)] for the clean clip and its noisy versions (Versions)."""
    import soundfile as sf
    y, sr = sf.read(item["path"], dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if item["crop"]:
        segs = speech_segments(y)
        if segs:
            y = y[segs[0][0]:segs[-1][1]]
    rng = np.random.default_rng(seed)
    audio = [y, augment(rng, noise, y)]
    for _ in range(versions.copies - 1):
        audio.append(augment(rng, noise, y, p_noise=1.0, snr=versions.hard_snr))

    def align(v: np.ndarray) -> np.ndarray:
        return cmvn(mfcc(v, DEFAULT.features), DEFAULT.features.cmvn_frames).astype(np.float16)
    clean = align(y)
    return [(encoder_input(v, DEFAULT.features).astype(np.float16), clean if k == 0 or versions.align_clean else align(v))
            for k, v in enumerate(audio)]


def build_cache(items: list[dict], noise_dir: Path, cache: Path, jobs: int, versions: Versions = Versions()) -> dict:
    """The features of every item's versions, read from `cache` when it holds these versions (its .json beside
    it says which; a cache without one holds the default versions), else made and written there."""
    made_with = cache.with_suffix(".json")
    if cache.is_file():
        d = json.loads(made_with.read_text(encoding="utf-8")) if made_with.is_file() else {}
        stored = Versions(**{**d, "hard_snr": tuple(d.get("hard_snr", Versions.hard_snr))})
        if stored != versions:
            raise SystemExit(f"{cache} holds other versions of the clips ({stored}, not {versions}): "
                             "give another --work, or delete it to featurise again")
        log.info("features from %s", cache)
        with np.load(cache, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    from multiprocessing import Pool
    noise = load_noise(noise_dir)
    t0 = time.time()
    with Pool(jobs, initializer=_init_worker, initargs=(noise, versions)) as pool:
        feats = pool.starmap(_featurize, [(it, i) for i, it in enumerate(items)], chunksize=32)
    x, a, owner = [], [], []
    for i, made in enumerate(feats):
        for fx, fa in made:
            x.append(fx)
            a.append(fa)
            owner.append(i)
    z = {"x": np.concatenate(x), "a": np.concatenate(a), "lengths": np.array([len(f) for f in x]),
         "owner": np.array(owner)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **z)
    made_with.write_text(json.dumps(asdict(versions)) + "\n", encoding="utf-8")
    log.info("featurised %d clips (%d versions) in %.0f s -> %s", len(items), len(x), time.time() - t0, cache)
    return z


_NOISE: list[np.ndarray] = []
_VERSIONS: list[Versions] = [Versions()]


def _init_worker(noise: list[np.ndarray], versions: Versions) -> None:
    torch.set_num_threads(1)
    _NOISE[:] = noise
    _VERSIONS[0] = versions


def _featurize(item: dict, seed: int):
    return featurize(item, _NOISE, seed, _VERSIONS[0])


class Batches:
    """Pairs of versions with the same text, preferably by different speakers."""

    def __init__(self, items: list[dict], z: dict, seed: int):
        self.rng = np.random.default_rng(seed)
        starts = np.concatenate([[0], np.cumsum(z["lengths"])[:-1]])
        self.x = [z["x"][s:s + n] for s, n in zip(starts, z["lengths"])]
        self.a = [z["a"][s:s + n] for s, n in zip(starts, z["lengths"])]
        owner = z["owner"]
        self.speakers = sorted({it["speaker"] for it in items if it["speaker"] is not None})
        texts = sorted({it["text"] for it in items})
        index = {s: i for i, s in enumerate(self.speakers)}
        self.spk_id = np.array([index.get(items[o]["speaker"], -1) for o in owner])   # -1: not known
        text_index = {t: i for i, t in enumerate(texts)}
        self.text_id = np.array([text_index[items[o]["text"]] for o in owner])
        self.by_text = [np.flatnonzero(self.text_id == t) for t in range(len(texts))]
        self.texts = [t for t in range(len(texts)) if len(self.by_text[t]) >= 2]
        self.n_texts = len(texts)

    def sample(self, pairs: int) -> list[int]:
        out = []
        for t in self.rng.choice(self.texts, pairs, replace=len(self.texts) < pairs):
            pool = self.by_text[t]
            i = int(self.rng.choice(pool))
            other = pool[self.spk_id[pool] != self.spk_id[i]]
            if len(other) == 0 or self.rng.random() < 0.2:
                other = pool[pool != i]
            out += [i, int(self.rng.choice(other))]
        return out

    def crop(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        x, a = self.x[i], self.a[i]
        if len(x) > MAX_FRAMES:
            s = int(self.rng.integers(0, len(x) - MAX_FRAMES + 1))
            x, a = x[s:s + MAX_FRAMES], a[s:s + MAX_FRAMES]
        return x.astype(np.float32), a.astype(np.float32)


def frame_loss(kw: torch.Tensor, lengths: torch.Tensor, align: list[np.ndarray], texts: np.ndarray,
               rng: np.random.Generator, tau: float = 0.1, points: int = 24) -> torch.Tensor:
    """InfoNCE on DTW-aligned frames of each pair (items 2k, 2k+1) against the other take's other
    frames (outside +-2) and every frame of a take of another word."""
    losses = []
    for k in range(0, len(align), 2):
        a, b = k, k + 1
        path = dtw.align(align[a], align[b])
        pick = rng.choice(len(path), min(points, len(path)), replace=False)
        ia = torch.tensor([path[p][0] for p in pick])
        jb = torch.tensor([path[p][1] for p in pick])
        others = np.flatnonzero(texts != texts[a])
        c = int(rng.choice(others)) if len(others) else a
        nb, nc = int(lengths[b]), int(lengths[c])
        cands = torch.cat([kw[b, :nb], kw[c, :nc]])                         # (nb + nc, D)
        logits = kw[a, ia] @ cands.T / tau                                   # (P, nb + nc)
        near = (torch.arange(nb)[None, :] - jb[:, None]).abs()
        blocked = torch.zeros_like(logits, dtype=torch.bool)
        blocked[:, :nb] = (near > 0) & (near <= 2)
        losses.append(nn.functional.cross_entropy(logits.masked_fill(blocked, -1e4), jb))
    return torch.stack(losses).mean()


class Heads(nn.Module):
    """Training-only classifiers: AAM-softmax over speakers, softmax over words."""

    def __init__(self, shape: EncoderShape, n_speakers: int, n_texts: int):
        super().__init__()
        from speechbrain.nnet.losses import AdditiveAngularMargin, LogSoftmaxWrapper
        self.spk_w = nn.Parameter(torch.randn(n_speakers, shape.spk_dim) * 0.01)
        self.word = nn.Linear(2 * shape.kw_dim, n_texts)
        self.aam = LogSoftmaxWrapper(AdditiveAngularMargin(margin=0.2, scale=30.0))

    def losses(self, kw, spk, lengths, spk_id, text_id) -> tuple[torch.Tensor, torch.Tensor]:
        known = spk_id >= 0                   # clips of the phrases corpus have no speaker id
        cos = nn.functional.normalize(spk[known], dim=1) @ nn.functional.normalize(self.spk_w, dim=1).T
        l_spk = self.aam(cos.unsqueeze(1), spk_id[known].unsqueeze(1)) if known.any() else spk.sum() * 0.0
        mask = (torch.arange(kw.shape[1])[None, :] < lengths[:, None]).unsqueeze(2)
        mean = (kw * mask).sum(1) / lengths[:, None]
        mx = kw.masked_fill(~mask, -2.0).max(1).values
        l_word = nn.functional.cross_entropy(self.word(torch.cat([mean, mx], 1)), text_id)
        return l_spk, l_word


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", default="../shared/data/words")
    ap.add_argument("--noise", default=TRAIN_NOISE_DIR, help="training noise (never the dev noise)")
    ap.add_argument("--trainset", default=None, help="scripts/build_training_set.py output (synthetic speakers)")
    ap.add_argument("--phrases", default=None, help="../shared/data/phrases: wake phrases without speaker ids")
    ap.add_argument("--work", required=True, help="features cache and checkpoints")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--pairs", type=int, default=24, help="pairs per step and process (batch = 2 x pairs)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="feature extraction processes")
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0, help="torch threads per process (0: torch's default)")
    ap.add_argument("--out", default=str(PRETRAINED_DIR / ENCODER_FILE))
    ap.add_argument("--noisy-copies", type=int, default=Versions.copies, help="noisy versions of each clip (the first as augment makes it)")
    ap.add_argument("--hard-snr", type=float, nargs=2, default=Versions.hard_snr, metavar=("LO", "HI"),
                    help="SNR range (dB) of the noisy versions after the first, always noisy")
    ap.add_argument("--align-clean", action="store_true", help="align every version by its clean clip's MFCC frames")
    ap.add_argument("--hold-out", default="", help="languages left out of training, to measure an unseen one (e.g. ar)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if ddp:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if ddp else (0, 1)
    torch.manual_seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)
    work = Path(a.work)
    items = load_items(Path(a.words), Path(a.trainset) if a.trainset else None,
                       Path(a.phrases) if a.phrases else None, held_out_langs(a.hold_out))
    cache = work / "features.npz"
    versions = Versions(a.noisy_copies, tuple(a.hard_snr), a.align_clean)
    if rank == 0:
        z = build_cache(items, check_training_noise(a.noise), cache, a.jobs, versions)
    if ddp:
        dist.barrier()
    if rank != 0:
        z = build_cache(items, check_training_noise(a.noise), cache, a.jobs, versions)
    data = Batches(items, z, a.seed * 1000 + rank)
    shape = EncoderShape()
    model, heads = MultiTaskEncoder(shape), Heads(shape, len(data.speakers), data.n_texts)
    params = list(model.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.1)
    step, ckpt, history = 0, work / "checkpoint.pt", []
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)   # our own file, written below
        model.load_state_dict(state["model"])
        heads.load_state_dict(state["heads"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step = state["step"]
        history = state.get("history", [])
        data.rng.bit_generator.state = state["rng"][rank] if rank < len(state["rng"]) else data.rng.bit_generator.state
        log.info("resumed from %s at step %d", ckpt, step)
    net = nn.parallel.DistributedDataParallel(model) if ddp else model
    log.info("%d clips, %d speakers, %d words/phrases; %d params; %d processes", len(items), len(data.speakers),
             data.n_texts, sum(p.numel() for p in model.parameters()), world)
    bar = Progress(a.steps, "train steps", every_s=30, initial=step, quiet=rank != 0)
    model.train()
    while step < a.steps:
        idx = data.sample(a.pairs)
        crops = [data.crop(i) for i in idx]
        lengths = torch.tensor([len(c[0]) for c in crops])
        x = torch.zeros(len(idx), int(lengths.max()), shape.n_mels)
        for k, (cx, _) in enumerate(crops):
            x[k, :len(cx)] = torch.from_numpy(cx)
        kw, spk = net(x, lengths)
        l_spk, l_word = heads.losses(kw, spk, lengths, torch.from_numpy(data.spk_id[idx]),
                                     torch.from_numpy(data.text_id[idx]))
        l_frame = frame_loss(kw, lengths, [c[1] for c in crops], data.text_id[idx], data.rng)
        loss = l_spk + l_word + l_frame
        opt.zero_grad()
        loss.backward()
        if ddp:   # heads are outside DDP: average their gradients by hand
            for p in heads.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= world
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        step += 1
        history.append([l_spk.item(), l_word.item(), l_frame.item()])
        bar.update()
        if step % 50 == 0:
            h = np.mean(history[-50:], axis=0)
            bar.note = f"losses: speaker {h[0]:.2f}, word {h[1]:.2f}, frame {h[2]:.2f}"
        if rank == 0 and (step % a.ckpt_every == 0 or step == a.steps):
            rngs = [data.rng.bit_generator.state]
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "heads": heads.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "step": step, "rng": rngs, "history": history[-200:]}, tmp)
            tmp.replace(ckpt)
    bar.close()
    if rank == 0:
        model.eval()
        arrays = export_arrays(model)
        arrays["dilations"] = np.array(shape.dilations)
        np.savez(a.out, **arrays)
        last = np.mean(history[-200:], axis=0) if history else [float("nan")] * 3
        meta = {"command": " ".join(["python", *sys.argv]), "steps": a.steps, "processes": world,
                "clips": len(items), "speakers": len(data.speakers), "texts": data.n_texts,
                "final_losses": {"speaker": round(float(last[0]), 3), "word": round(float(last[1]), 3),
                                 "frame": round(float(last[2]), 3)}, "shape": shape.as_dict()}
        Path(a.out).with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        log.info("wrote %s (%.1f MB): %s", a.out, Path(a.out).stat().st_size / 1e6, meta["final_losses"])
    if ddp:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
