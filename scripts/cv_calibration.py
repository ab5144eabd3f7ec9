#!/usr/bin/env python3
"""Leave-one-table-out cross-validation of a calibration on train-split score tables.

    python scripts/cv_calibration.py --scores SCRATCH/tables/encoder-[123].tsv \
        --columns kw_z,...,cond_clipped --set-columns kw_z,...,cond_speech_s [--set-max-positive 0.5] \
        [--out cv.json]

Each table in turn is held out: the plain and the test-set normalised calibrations are fitted on the
others by fit_calibration.fit, and the held-out tasks are decided by ablation.decide
(commands.fused_margins), as predict.sh decides. Prints (and writes to --out) the mean task score,
with test-set normalisation and clip by clip, per fold and overall. This is how the fit choices of docs/results.md (v5, v6) were made;
dev only picks between what it leaves tied.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from ablation import decide
from fit_calibration import fit, read_tables
from kws.app.commands import Tier
from kws.config import Config
from kws.harness.metrics import task_score
from kws.scoring.calibrate import Calibration, folder_columns

log = logging.getLogger("cv_calibration")


def table_score(rows: list[dict], plain: Calibration, by_set: Calibration | None, cfg: Config) -> float:
    """Mean over the table's tasks of MR + 9*FAR, each task decided as predict.sh decides its folder."""
    tasks: dict[str, list[dict]] = {}
    for r in rows:
        tasks.setdefault(r["task"], []).append(r)
    tiers = [Tier("full", True, plain, by_set)]
    return float(np.mean([task_score([int(r["label"]) for r in rs], decide(rs, tiers, 0, cfg))[0]
                          for rs in tasks.values()]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scores", required=True, nargs="+", help="two or more train-split tables (score_tasks.py)")
    ap.add_argument("--columns", required=True, help="score columns to fuse, as fit_calibration.py --columns")
    ap.add_argument("--set-columns", default="", help="as fit_calibration.py --set-columns")
    ap.add_argument("--set-max-positive", type=float, default=Config().detect.set_max_positive,
                    help="DetectConfig.set_max_positive for the decisions")
    ap.add_argument("--positives", default="1,2,3,4,5")
    ap.add_argument("--tau", type=float, default=1.0)
    ap.add_argument("--task-l2", type=float, default=1e-3)
    ap.add_argument("--out", default=None, help="write the result here as JSON")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    tables = read_tables(a.scores)
    if len(tables) < 2:
        raise SystemExit("cross-validation needs two or more tables")
    cfg = Config()
    cfg = replace(cfg, detect=replace(cfg.detect, set_max_positive=a.set_max_positive))
    names = tuple(a.columns.split(","))
    set_names = tuple(c for n in a.set_columns.split(",") if n for c in folder_columns(n))
    folds = []
    for k, held in enumerate(tables):
        train = [r for j, t in enumerate(tables) if j != k for r in t]
        plain = fit(train, names, (), [0], 1, 1e-2)
        by_set = fit(train, names, set_names, [int(p) for p in a.positives.split(",")], 1, 1e-2,
                     task_l2=a.task_l2, tau=a.tau) if set_names else None
        folds.append({"held_out": a.scores[k], "set_norm": table_score(held, plain, by_set, cfg),
                      "clip_by_clip": table_score(held, plain, None, cfg)})
        log.info("fold %d (%s): %.3f with test-set normalisation, %.3f clip by clip", k + 1, a.scores[k],
                 folds[-1]["set_norm"], folds[-1]["clip_by_clip"])
    result = {"columns": names, "set_columns": set_names, "set_max_positive": a.set_max_positive,
              "tau": a.tau, "task_l2": a.task_l2, "folds": folds,
              "set_norm": float(np.mean([f["set_norm"] for f in folds])),
              "clip_by_clip": float(np.mean([f["clip_by_clip"] for f in folds]))}
    print(json.dumps({k: result[k] for k in ("set_norm", "clip_by_clip")}))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
