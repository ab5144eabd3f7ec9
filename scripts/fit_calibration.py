#!/usr/bin/env python3
"""Fit the fusion weights and the global threshold on train-split task scores; write pretrained/calibration.json.

    python scripts/score_tasks.py --tasks SCRATCH/kws-train --speakers-half calibration --out SCRATCH/train_scores.tsv
    python scripts/fit_calibration.py --scores SCRATCH/train_scores.tsv [SCRATCH/train2_scores.tsv ...]

Only ever pass scores of train-split tasks: a calibration fitted on dev or practice makes
their numbers meaningless.
"""
from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kws.calibrate import CALIBRATION_FILE, Calibration, fit_logistic, fit_threshold  # noqa: E402
from kws.config import PRETRAINED_DIR  # noqa: E402
from kws.detect import SCORE_NAMES  # noqa: E402

log = logging.getLogger("fit_calibration")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scores", required=True, nargs="+", help="TSVs from scripts/score_tasks.py on train-split tasks")
    # kw_raw is left out by default: a raw distance shifts with language, noise and microphone,
    # while every other column is normalised per speaker or per clip.
    ap.add_argument("--columns", default=",".join(n for n in SCORE_NAMES if n not in ("kw_raw", "kw_cnn")),
                    help="score columns to fuse (add kw_cnn for the learned matcher)")
    ap.add_argument("--l2", type=float, default=1e-2)
    ap.add_argument("--out", default=str(PRETRAINED_DIR / CALIBRATION_FILE),
                    help="calibration.json, calibration_keyword.json, calibration_encoder.json, ... (see FeatureConfig.artefact)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rows = []
    for k, path in enumerate(a.scores):
        with open(path, encoding="utf-8") as f:
            # task ids repeat across task sets built with other seeds: keep them apart
            rows += [{**r, "task": f"{k}:{r['task']}"} for r in csv.DictReader(f, delimiter="\t")]
    if any(r["task"].split(":", 1)[1].startswith(("D", "P")) for r in rows):
        raise SystemExit("these look like dev (D...) or practice (P...) tasks; fit on train-split tasks only")
    names = tuple(a.columns.split(","))
    x = np.array([[float(r[n]) for n in names] for r in rows])
    keep = np.isfinite(x).all(axis=1)  # unscored clips (no speech) are predicted 0 anyway
    x, y = x[keep], np.array([int(r["label"]) for r in rows])[keep]
    groups = np.array([r["task"] for r in rows])[keep]
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    w, b = fit_logistic((x - mean) / std, y, a.l2)
    fused = (x - mean) / std @ w + b
    threshold, score = fit_threshold(fused, y, groups)
    cal = Calibration(names, tuple(mean.round(6)), tuple(std.round(6)), tuple(w.round(6)), round(b, 6),
                      round(threshold, 6), provenance={
                          "command": " ".join(["python", *sys.argv]), "tasks": len(set(groups)),
                          "clips": int(len(y)), "train_score": round(score, 4)})
    cal.save(a.out)
    log.info("wrote %s: %d tasks, train score %.3f, weights %s", a.out, len(set(groups)), score,
             dict(zip(names, w.round(2))))


if __name__ == "__main__":
    main()
