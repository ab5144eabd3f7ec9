#!/usr/bin/env python3
"""Train the learned noise mask: pretrained/mask.npz (kws/signal/mask.py runs it).

    python scripts/train_mask.py --words ../shared/data/words --noise build/train-noise \
        [--loss gain|log-mel] [--examples 16000] [--steps 4000] [--hold-out ar] [--out FILE]

Examples: 1-3 words of one train-split speaker (scripts/word_corpus.utterance; as the encoder, not the calibration
half of the task corpora, whose train tables fit the calibrations), placed at random in 3 s of
silence, mixed over the whole 3 s with a stretch of build/train-noise (real outdoor noise, babble of train
speakers, synthetic noise; never ../shared/data/noise) at -5 to 25 dB, 15 % left clean, at a random level.
Loss (--loss): `gain`, the squared error of the gains against each band's share of speech power (clean mel / mixed
mel, clipped to [0.05, 1]); or `log-mel`, that of the masked log-mel against the clean one, both floored at the
features' relative floor (gains down to 0.001). 5 % of the examples are held back and their loss reported against no mask at all.
Deterministic for a --seed and --threads.
"""
from __future__ import annotations

import argparse
import functools
import logging
import time
from pathlib import Path

import numpy as np

from kws import limit_blas_threads

limit_blas_threads(1)

import torch  # noqa: E402
from torch import nn  # noqa: E402

from augment import load_noise, mix_at_snr, noise_segment, peak_normalise  # noqa: E402
from kws.config import SAMPLE_RATE  # noqa: E402
from kws.signal.mask import CFG, FeatureConfig, mask_inputs  # noqa: E402
from kws.signal.features import mel_frames  # noqa: E402
from word_corpus import Words, held_out_langs, unheard_speakers, utterance  # noqa: E402

log = logging.getLogger("train_mask")
CLIP_S = 3.0
# The lowest gain: 0.05 for --loss gain; 0.001 (-30 dB) for log-mel, so that noise between words can sink to the
# features' relative floor, as in a clean clip
FLOOR_GAIN = {"gain": 0.05, "log-mel": 0.001}
FEATURE_FLOOR = 1e-3   # FeatureConfig.relative_floor: the loss compares log-mel frames as the features floor them


def example(rng: np.random.Generator, words: Words, speakers: list[str], noise: list[np.ndarray],
            cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(network inputs, clean log-mel, mixed log-mel), both log-mels relative to the mix's peak band energy."""
    n = int(CLIP_S * SAMPLE_RATE)
    u = utterance(rng, words, speakers[int(rng.integers(len(speakers)))], int(rng.integers(1, 4)))[:n]
    clean = np.zeros(n, np.float32)
    a = int(rng.integers(0, n - len(u) + 1))
    clean[a:a + len(u)] = u
    if rng.random() < 0.85:
        seg = noise_segment(noise[int(rng.integers(len(noise)))], n, rng)
        mix = mix_at_snr(clean, seg, rng.uniform(-5, 25))
    else:
        mix = clean.copy()
    loud = peak_normalise(mix, rng.uniform(-14, -2))
    k = float(np.abs(loud).max() / max(float(np.abs(mix).max()), 1e-9))   # the same gain for the clean part
    s_mel, m_mel = mel_frames(clean * k, cfg), mel_frames(loud, cfg)
    peak = float(m_mel.max()) + 1e-10
    return (mask_inputs(m_mel), np.log(s_mel / peak + 1e-12).astype(np.float16),
            np.log(m_mel / peak + 1e-12).astype(np.float16))


def log_spectral_loss(g: torch.Tensor, log_s: torch.Tensor, log_m: torch.Tensor) -> torch.Tensor:
    """Squared error of the masked log-mel against the clean one, both floored as the features floor them."""
    enhanced = torch.log(g * torch.exp(log_m) + FEATURE_FLOOR)
    return torch.mean((enhanced - torch.log(torch.exp(log_s) + FEATURE_FLOOR)) ** 2)


def gain_loss(g: torch.Tensor, log_s: torch.Tensor, log_m: torch.Tensor, floor: float) -> torch.Tensor:
    """Squared error of the gains against each band's share of speech power, clipped to [floor, 1]."""
    return torch.mean((g - torch.clamp(torch.exp(log_s - log_m), floor, 1.0)) ** 2)


class MaskModel(nn.Module):
    def __init__(self, n_in: int, n_out: int, floor_gain: float = FLOOR_GAIN["gain"], width: int = 96,
                 dilations: tuple[int, ...] = (2, 4, 8)):
        super().__init__()
        self.floor_gain = floor_gain
        self.first = nn.Conv1d(n_in, width, 5, padding=2)
        self.blocks = nn.ModuleList([nn.Conv1d(width, width, 3, padding=d, dilation=d) for d in dilations])
        self.last = nn.Conv1d(width, n_out, 1)
        self.dilations = (1, *dilations, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (B, C, T) -> gains (B, n_out, T)
        h = torch.relu(self.first(x))
        for b in self.blocks:
            h = h + torch.relu(b(h))
        return self.floor_gain + (1 - self.floor_gain) * torch.sigmoid(self.last(h))


def export(model: MaskModel) -> dict[str, np.ndarray]:
    convs = [model.first, *model.blocks, model.last]
    out: dict[str, np.ndarray] = {"n_layers": np.array(len(convs)), "floor_gain": np.array(model.floor_gain, np.float32)}
    for i, (c, d) in enumerate(zip(convs, model.dilations)):
        w = c.weight.detach().numpy()                       # (C_out, C_in, k)
        out[f"w{i}"] = w.transpose(2, 1, 0).reshape(-1, w.shape[0]).astype(np.float16)
        out[f"b{i}"] = c.bias.detach().numpy().astype(np.float32)
        out[f"d{i}"] = np.array(d)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=Path, required=True)
    ap.add_argument("--noise", type=Path, required=True, help="build/train-noise (never ../shared/data/noise)")
    ap.add_argument("--examples", type=int, default=16000)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--loss", choices=sorted(FLOOR_GAIN), default="gain",
                    help="gain: the gains' squared error; log-mel: the masked log-mel's (docs/results.md, v23)")
    ap.add_argument("--hold-out", default="", help="languages kept out, e.g. ar")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("pretrained/mask.npz"))
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    words = Words(a.words, "train")
    skip = held_out_langs(a.hold_out)
    unheard = unheard_speakers(words.speakers, words.corpus)   # the train tables' speakers stay unheard
    speakers = [s for s in words.speakers if words.lang[s] not in skip and s not in unheard]
    noise = load_noise(a.noise)
    t0 = time.time()
    pairs = [example(rng, words, speakers, noise, CFG) for _ in range(a.examples)]
    x = torch.from_numpy(np.stack([p[0] for p in pairs]).transpose(0, 2, 1).copy())
    ls = torch.from_numpy(np.stack([p[1] for p in pairs]).transpose(0, 2, 1).copy())
    lm = torch.from_numpy(np.stack([p[2] for p in pairs]).transpose(0, 2, 1).copy())
    del pairs
    log.info("%d examples of %d speakers in %.0f s", len(x), len(speakers), time.time() - t0)
    n_val = max(1, len(x) // 20)
    val = slice(0, n_val)   # the first 5 % are held back
    model = MaskModel(x.shape[1], ls.shape[1], FLOOR_GAIN[a.loss])
    objective = functools.partial(gain_loss, floor=model.floor_gain) if a.loss == "gain" else log_spectral_loss
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=a.steps)
    gen = torch.Generator().manual_seed(a.seed)
    for step in range(1, a.steps + 1):
        idx = torch.randint(n_val, len(x), (a.batch,), generator=gen)
        loss = objective(model(x[idx]), ls[idx].float(), lm[idx].float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.steps:
            with torch.no_grad():
                held = objective(model(x[val]), ls[val].float(), lm[val].float())
                plain = objective(torch.ones_like(lm[val].float()), ls[val].float(), lm[val].float())
            log.info("step %d: train %.4f, held back %.4f (no mask: %.4f), %.0f s", step, float(loss.detach()),
                     float(held), float(plain), time.time() - t0)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(a.out, **export(model))
    log.info("wrote %s", a.out)


if __name__ == "__main__":
    main()
