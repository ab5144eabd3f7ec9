#!/usr/bin/env python3
"""Does a denoising front end help? Keyword and speaker separation on dev short utterances, with and without it.

    pip install -e '.[denoise]'     # noisereduce, and pyrnnoise (RNNoise: kws/signal/denoise.py)
    python scripts/eval_denoise.py --words ../shared/data/words --noise ../shared/data/noise \
        [--seed 5] [--denoisers none,nr-stationary,nr-nonstationary,rnnoise,mask] --out docs/denoise_eval.json

The trials are eval_speaker.py's (dev speakers; five clean takes of a 1-2-word phrase per enrollment; test
utterances clean and with dev noise at 0-10 dB). Each denoiser is applied to takes and tests alike, as a
front end would be. Keyword: every enrollment's takes against every test by subsequence DTW (mean of the
3 best of 5 takes) in the MFCC and the encoder front ends; a test saying the phrase (any speaker) is a
target; EER per enrollment, averaged (and over tests under 5 dB estimated SNR). Speaker: eval_speaker.py's
GE2E with adaptive s-norm against the shipped cohort, and score fusions (equal weights) with the GE2E of
the plain audio and the encoder voiceprint. Measuring only: nothing is fitted, and dev noise only builds trials.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np

import eval_speaker as ev
from kws.config import DEFAULT, SAMPLE_RATE
from kws.harness.report import eer
from kws.nn.encoder import keyword_frames, speaker_embeddings
from kws.scoring.cohort import load_cohort
from kws.scoring.detect import keyword_distances
from kws.scoring.scores import top_k_mean
from kws.scoring.voiceprint import snorm, unit, voiceprint
from kws.signal.denoise import denoise
from kws.signal.mask import denoise as mask_denoise, load_mask
from kws.signal.conditions import measure

log = logging.getLogger("eval_denoise")
LOW_SNR_DB = 5.0      # the tests reported apart: estimated SNR under this


def noisereduce(stationary: bool) -> Callable[[np.ndarray], np.ndarray]:
    """Spectral gating (noisereduce), the noise estimated from the clip itself."""
    try:
        import noisereduce as nr
    except ImportError as e:
        raise SystemExit("nr-*: pip install noisereduce (or -e '.[denoise]')") from e
    return lambda y: nr.reduce_noise(y=y, sr=SAMPLE_RATE, stationary=stationary).astype(np.float32)


def denoiser(name: str, mask_path: str = "") -> Callable[[np.ndarray], np.ndarray]:
    if name == "none":
        return lambda y: y
    if name in ("nr-stationary", "nr-nonstationary"):
        return noisereduce(name == "nr-stationary")
    if name == "rnnoise":
        return denoise
    if name == "mask":
        net = load_mask(mask_path)
        return lambda y: mask_denoise(y, net)
    raise SystemExit(f"unknown denoiser {name!r}: none, nr-stationary, nr-nonstationary, rnnoise, mask")


def keyword_eer(takes: list[list[np.ndarray]], tests: list[np.ndarray], target: np.ndarray,
                frontend: str, mask: np.ndarray | None = None) -> float:
    """Mean per-enrollment EER of the takes' DTW distances (3 best of 5) to the tests (target: saying the phrase)."""
    cfg = DEFAULT.features if frontend == "mfcc" else DEFAULT.second_features()
    frames = [keyword_frames(y, cfg) for y in tests]
    dist = np.array([top_k_mean(keyword_distances([keyword_frames(t, cfg) for t in ts], frames), 3, largest=False)
                     for ts in takes])
    keep = np.ones(len(tests), bool) if mask is None else mask
    per = [eer(-dist[i][keep], target[i][keep]) for i in range(len(takes)) if target[i][keep].any()]
    return float(np.mean(per))


def speaker_scores(takes: np.ndarray, tests: np.ndarray, cohort: np.ndarray) -> np.ndarray:
    """(E, T) adaptive s-norm scores (eval_speaker.py's mean+as) of unit take embeddings (E, 5, D)."""
    vp = np.stack([voiceprint(t) for t in takes])
    tests, cohort = unit(tests), unit(cohort)
    return snorm(vp @ tests.T, vp @ cohort.T, tests @ cohort.T, 100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ev.trial_arguments(ap, phrases=2, seed=5)
    ap.add_argument("--denoisers", default="none,nr-stationary,nr-nonstationary,rnnoise",
                    help="also: mask (the learned mask, kws/signal/mask.py)")
    ap.add_argument("--mask", default="", help="the mask's weights (default pretrained/mask.npz)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _, enrollments, tests, conditions = ev.trials(a)
    low = measure_low(conditions["0-10 dB"])
    says = np.array([[t.words == p.words for t in tests] for p, _ in enrollments])
    speaker = np.array([[t.speaker == p.speaker for t in tests] for p, _ in enrollments])
    cohort = {v: load_cohort(cfg=DEFAULT.features, voiceprint=v).speaker_embeddings for v in ("ge2e", "encoder")}
    takes = [[y.audio for y in ts] for _, ts in enrollments]
    flat = [y for ts in takes for y in ts]
    shape = (len(takes), len(takes[0]), -1)
    plain = {v: {"takes": unit(speaker_embeddings(flat, v, DEFAULT.features)).reshape(shape),
                 **{c: speaker_embeddings(aud, v, DEFAULT.features) for c, aud in conditions.items()}}
             for v in ("ge2e", "encoder")}
    result = {"split": a.split, "seed": a.seed, "enrollments": len(enrollments), "tests": len(tests),
              "low_snr_tests": int(low.sum()), "denoisers": {}}
    for name in a.denoisers.split(","):
        fn, t0 = denoiser(name, a.mask), time.time()
        d_takes = [[fn(y) for y in ts] for ts in takes]
        d_cond = {c: [fn(y) for y in aud] for c, aud in conditions.items()}
        seconds = sum(len(y) for ys in [*d_takes, *d_cond.values()] for y in ys) / SAMPLE_RATE
        r: dict = {"rtf": round((time.time() - t0) / seconds, 4), "keyword": {}, "speaker": {}}
        for fe in ("mfcc", "encoder"):
            r["keyword"][fe] = {c: round(keyword_eer(d_takes, aud, says, fe), 4) for c, aud in d_cond.items()}
            r["keyword"][fe]["under 5 dB"] = round(keyword_eer(d_takes, d_cond["0-10 dB"], says, fe, low), 4)
        g_takes = unit(speaker_embeddings([y for ts in d_takes for y in ts], "ge2e", DEFAULT.features)).reshape(shape)
        for c, aud in d_cond.items():
            den = speaker_scores(g_takes, speaker_embeddings(aud, "ge2e", DEFAULT.features), cohort["ge2e"])
            ge2e = speaker_scores(plain["ge2e"]["takes"], plain["ge2e"][c], cohort["ge2e"])
            enc = speaker_scores(plain["encoder"]["takes"], plain["encoder"][c], cohort["encoder"])
            for rule, s in (("ge2e", den), ("ge2e + plain ge2e", (den + ge2e) / 2),
                            ("ge2e + plain ge2e + encoder", (den + ge2e + enc) / 3)):
                r["speaker"].setdefault(rule, {})[c] = ev.measure(s, speaker, says)
        result["denoisers"][name] = r
        log.info("%s: RTF %.4f; keyword %s; speaker %s", name, r["rtf"], r["keyword"],
                 {k: {c: m["eer"] for c, m in v.items()} for k, v in r["speaker"].items()})
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def measure_low(clips: list[np.ndarray]) -> np.ndarray:
    """Which clips' estimated SNR (kws.signal.conditions, as the detector measures it) is under LOW_SNR_DB."""
    return np.array([measure(y).snr_db < LOW_SNR_DB for y in clips])


if __name__ == "__main__":
    main()
