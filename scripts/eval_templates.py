#!/usr/bin/env python3
"""Do more templates from the five takes help the keyword side? Time-stretched takes, measured on dev short utterances.

    python scripts/eval_templates.py --words ../shared/data/words --noise ../shared/data/noise \
        [--seed 5] [--factors 0.8,0.9,1.1,1.25] --out docs/templates_eval.json
    python scripts/eval_templates.py --seed 5 --factors '' --frontends encoder --encoder SCRATCH/encoder.npz

The trials are eval_speaker.py's (dev speakers; five clean takes of a 1-2-word phrase per enrollment; test
utterances clean and with dev noise at 0-10 dB), as eval_denoise.py reads them. Each take's keyword frames are
also stretched in time by each factor (frames linearly interpolated: a slower or faster say of the same take),
and every enrollment's templates are matched against every test by subsequence DTW, in the MFCC and the encoder
front ends. Rules, each a distance per (enrollment, test):
- takes: the mean of the 3 best of the 5 takes (what detect does);
- stretched, best version: each take's distance is its closest version's (itself or a stretched one), then the
  mean of the 3 best of 5;
- stretched, 3 best of all: the mean of the 3 best of every take and version.
A test saying the phrase (any speaker) is a target; EER per enrollment, averaged, for each condition and for the
noisy tests under 5 dB estimated SNR. Measuring only: nothing is fitted, and dev noise only builds trials.

--encoder measures other encoder weights (scripts/train_encoder.py --out) in the encoder front end, and reports
beside it their voiceprint's EER on the same trials (the raw cosine of the takes' mean embedding; a test by the
enrolled speaker is a target): what a new encoder buys before every cohort and calibration is rebuilt for it.
--factors '': the takes alone.
"""
from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

import eval_speaker as ev
from eval_denoise import measure_low
from kws.config import DEFAULT
from kws.harness.report import eer
from kws.nn.encoder import MultiTask, encoder_keyword_frames, encoder_voiceprints, keyword_frames, load_multitask
from kws.scoring.detect import keyword_distances
from kws.scoring.scores import top_k_mean
from kws.scoring.voiceprint import unit, voiceprint

log = logging.getLogger("eval_templates")
TOP = 3    # the takes' best few that detect averages (DetectConfig.top_k)


def stretched(frames: np.ndarray, factor: float) -> np.ndarray:
    """frames said `factor` times as long: each dimension linearly interpolated on a new time grid."""
    n = len(frames)
    m = max(2, int(round(n * factor)))
    at = np.linspace(0.0, n - 1, m)
    lo = np.floor(at).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (at - lo)[:, None].astype(np.float32)
    return ((1 - w) * frames[lo] + w * frames[hi]).astype(np.float32)


def rule_distances(takes: list[np.ndarray], tests: list[np.ndarray], factors: list[float]) -> dict[str, np.ndarray]:
    """{rule: (n_tests,) distances} of one enrollment's take frames against test frames (no factors: the takes rule)."""
    versions = [[t, *(stretched(t, f) for f in factors)] for t in takes]
    flat = [v for vs in versions for v in vs]
    d = keyword_distances(flat, tests).reshape(len(takes), len(factors) + 1, len(tests))
    out = {"takes": top_k_mean(d[:, 0], TOP, largest=False)}
    if factors:
        out["stretched, best version"] = top_k_mean(d.min(axis=1), TOP, largest=False)
        out["stretched, 3 best of all"] = top_k_mean(d.reshape(-1, len(tests)), TOP, largest=False)
    return out


def frames_of(frontend: str, weights: MultiTask) -> Callable[[np.ndarray], np.ndarray]:
    """The keyword frames of a front end: MFCC, or the encoder's under the weights measured."""
    if frontend == "mfcc":
        return lambda y: keyword_frames(y, DEFAULT.features)
    cfg = DEFAULT.second_features()
    return lambda y: encoder_keyword_frames(weights, y, cfg)


def keyword_eers(takes: list[list[np.ndarray]], tests: list[np.ndarray], target: np.ndarray,
                 frames: Callable[[np.ndarray], np.ndarray], factors: list[float],
                 mask: np.ndarray | None = None) -> dict[str, float]:
    """{rule: mean per-enrollment EER} in one front end."""
    test_frames = [frames(y) for y in tests]
    per: dict[str, list[float]] = {}
    keep = np.ones(len(tests), bool) if mask is None else mask
    for i, ts in enumerate(takes):
        if not target[i][keep].any():
            continue
        got = rule_distances([frames(t) for t in ts], [f for f, k in zip(test_frames, keep) if k], factors)
        for rule, dist in got.items():
            per.setdefault(rule, []).append(eer(-dist, target[i][keep]))
    return {rule: round(float(np.mean(v)), 4) for rule, v in per.items()}


def voiceprint_eer(takes: list[list[np.ndarray]], tests: list[np.ndarray], target: np.ndarray, weights: MultiTask) -> float:
    """EER of the encoder voiceprint's raw cosine over every (enrollment, test) trial."""
    def embed(wavs: list[np.ndarray]) -> np.ndarray:
        return unit(encoder_voiceprints(weights, wavs, DEFAULT.features))
    prints = np.stack([voiceprint(embed(ts)) for ts in takes])
    return round(float(eer((prints @ embed(tests).T).ravel(), target.ravel())), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ev.trial_arguments(ap, phrases=2, seed=5)
    ap.add_argument("--factors", default="0.8,0.9,1.1,1.25", help="time-stretch factors (frames per frame of the take)")
    ap.add_argument("--frontends", default="mfcc,encoder", help="keyword front ends measured")
    ap.add_argument("--encoder", default=None, help="encoder weights measured (default: the shipped ones)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    factors = [float(f) for f in a.factors.split(",") if f]
    weights = load_multitask(a.encoder)
    _, enrollments, tests, conditions = ev.trials(a)
    low = measure_low(conditions["0-10 dB"])
    says = np.array([[t.words == p.words for t in tests] for p, _ in enrollments])
    same = np.array([[t.speaker == p.speaker for t in tests] for p, _ in enrollments])
    takes = [[y.audio for y in ts] for _, ts in enrollments]
    result: dict = {"split": a.split, "seed": a.seed, "factors": factors, "enrollments": len(enrollments),
                    "tests": len(tests), "low_snr_tests": int(low.sum()), "encoder_sha": weights.sha, "keyword": {}}
    for fe in a.frontends.split(","):
        frames = frames_of(fe, weights)
        r = {c: keyword_eers(takes, aud, says, frames, factors) for c, aud in conditions.items()}
        r["under 5 dB"] = keyword_eers(takes, conditions["0-10 dB"], says, frames, factors, low)
        result["keyword"][fe] = r
        log.info("%s: %s", fe, r)
    if a.encoder:
        result["voiceprint_eer"] = {c: voiceprint_eer(takes, aud, same, weights) for c, aud in conditions.items()}
        log.info("encoder voiceprint, raw cosine EER: %s", result["voiceprint_eer"])
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
