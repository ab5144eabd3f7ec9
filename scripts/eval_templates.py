#!/usr/bin/env python3
"""Do more templates from the five takes help the keyword side? Time-stretched takes, measured on dev short utterances.

    python scripts/eval_templates.py --words ../shared/data/words --noise ../shared/data/noise \
        [--seed 5] [--factors 0.8,0.9,1.1,1.25] --out docs/templates_eval.json

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
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

import eval_speaker as ev
from eval_denoise import measure_low
from kws.config import DEFAULT
from kws.harness.report import eer
from kws.nn.encoder import keyword_frames
from kws.scoring.detect import keyword_distances
from kws.scoring.scores import top_k_mean

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
    """{rule: (n_tests,) distances} of one enrollment's take frames against test frames."""
    versions = [[t, *(stretched(t, f) for f in factors)] for t in takes]
    flat = [v for vs in versions for v in vs]
    d = keyword_distances(flat, tests).reshape(len(takes), len(factors) + 1, len(tests))
    return {"takes": top_k_mean(d[:, 0], TOP, largest=False),
            "stretched, best version": top_k_mean(d.min(axis=1), TOP, largest=False),
            "stretched, 3 best of all": top_k_mean(d.reshape(-1, len(tests)), TOP, largest=False)}


def keyword_eers(takes: list[list[np.ndarray]], tests: list[np.ndarray], target: np.ndarray, frontend: str,
                 factors: list[float], mask: np.ndarray | None = None) -> dict[str, float]:
    """{rule: mean per-enrollment EER} in one front end."""
    cfg = DEFAULT.features if frontend == "mfcc" else DEFAULT.second_features()
    frames = [keyword_frames(y, cfg) for y in tests]
    per: dict[str, list[float]] = {}
    keep = np.ones(len(tests), bool) if mask is None else mask
    for i, ts in enumerate(takes):
        if not target[i][keep].any():
            continue
        got = rule_distances([keyword_frames(t, cfg) for t in ts], [f for f, k in zip(frames, keep) if k], factors)
        for rule, dist in got.items():
            per.setdefault(rule, []).append(eer(-dist, target[i][keep]))
    return {rule: round(float(np.mean(v)), 4) for rule, v in per.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ev.trial_arguments(ap, phrases=2, seed=5)
    ap.add_argument("--factors", default="0.8,0.9,1.1,1.25", help="time-stretch factors (frames per frame of the take)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    factors = [float(f) for f in a.factors.split(",")]
    _, enrollments, tests, conditions = ev.trials(a)
    low = measure_low(conditions["0-10 dB"])
    says = np.array([[t.words == p.words for t in tests] for p, _ in enrollments])
    takes = [[y.audio for y in ts] for _, ts in enrollments]
    result: dict = {"split": a.split, "seed": a.seed, "factors": factors, "enrollments": len(enrollments),
                    "tests": len(tests), "low_snr_tests": int(low.sum()), "keyword": {}}
    for fe in ("mfcc", "encoder"):
        r = {c: keyword_eers(takes, aud, says, fe, factors) for c, aud in conditions.items()}
        r["under 5 dB"] = keyword_eers(takes, conditions["0-10 dB"], says, fe, factors, low)
        result["keyword"][fe] = r
        log.info("%s: %s", fe, r)
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
