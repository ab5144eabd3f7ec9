#!/usr/bin/env python3
"""Build pretrained/take_noise.flac: the noise the enrollment takes are heard in (DetectConfig.word_noisy_takes).

    python scripts/build_take_noise.py --noise build/train-noise --out pretrained/take_noise.flac [--seconds 1.5]

A piece of --seconds from each babble_* and synth_* file of the training noise bank
(scripts/build_train_noise.py), at one RMS level, one after another: other voices and stationary noise of
every slope. The bank's real outdoor recordings are left out, so that the choice was measured on train
streams whose noise the takes never heard (the train benches' bed is noise-train). Deterministic for a --seed.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from augment import SR, load_noise_named
from noise_rule import check_training_noise

log = logging.getLogger("build_take_noise")
KINDS = ("babble_", "synth_")


def build(noise_dir: Path, seconds: float, seed: int) -> np.ndarray:
    rng, n = np.random.default_rng(seed), int(seconds * SR)
    pieces = []
    for name, y in load_noise_named(check_training_noise(noise_dir)):
        if not name.startswith(KINDS) or len(y) < n:
            continue
        s = int(rng.integers(0, len(y) - n + 1))
        p = y[s:s + n] - y[s:s + n].mean()
        pieces.append(p / (np.sqrt(np.mean(p ** 2)) + 1e-9) * 0.05)     # -26 dBFS RMS each
    if not pieces:
        raise SystemExit(f"{noise_dir}: no babble_* or synth_* files of {seconds} s; build it with build_train_noise.py")
    return np.clip(np.concatenate(pieces), -1, 1).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--noise", default="build/train-noise")
    ap.add_argument("--out", default="pretrained/take_noise.flac")
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    y = build(Path(a.noise), a.seconds, a.seed)
    sf.write(a.out, y, SR, subtype="PCM_16")
    log.info("%s: %.1f s; %s", a.out, len(y) / SR,
             json.dumps({"command": "python scripts/build_take_noise.py " + " ".join(
                 f"--{k} {v}" for k, v in vars(a).items())}))


if __name__ == "__main__":
    main()
