#!/usr/bin/env python3
"""Fit the fusion weights and the global threshold on train-split task scores; write pretrained/calibration.json.

    python scripts/score_tasks.py --tasks SCRATCH/kws-train --speakers-half calibration --out SCRATCH/train_scores.tsv
    python scripts/fit_calibration.py --scores SCRATCH/train_scores.tsv [SCRATCH/train2_scores.tsv ...]
    python scripts/fit_calibration.py --scores ... --set-columns kw_z,kw_t,... --out pretrained/calibration_set.json

Only ever pass scores of train-split tasks: a calibration fitted on dev or practice makes
their numbers meaningless.
"""
from __future__ import annotations

import argparse
import csv
import logging
import sys

import numpy as np

from kws.scoring.calibrate import Calibration, base_columns, folder_columns, with_set_columns
from kws.training.fitting import Standardised, fit_fusion
from kws.scoring import scores

log = logging.getLogger("fit_calibration")


def task_matrix(rows: list[dict], names: tuple[str, ...], set_names: tuple[str, ...], positives: list[int],
                seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, labels, task of each row) of the scored clips. With set_names, each task appears once
    per count in `positives`, with a random subset of its positives, its @set columns computed on that subset."""
    by_task: dict[str, list[dict]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)
    rng = np.random.default_rng(seed)
    xs, ys, gs = [], [], []
    for task, rs in by_task.items():
        cols = {n: np.array([float(r[n]) for r in rs]) for n in sorted(base_columns((*names, *set_names)))}
        label = np.array([int(r["label"]) for r in rs])
        scored = np.isfinite(np.column_stack([cols[n] for n in cols])).all(axis=1)  # unscored clips are predicted 0 anyway
        versions = [(task, scored)]
        if set_names:
            pos = np.flatnonzero(label == 1)
            versions = [(f"{task}/{k}", scored & ((label == 0) | np.isin(np.arange(len(rs)),
                         rng.choice(pos, min(k, len(pos)), replace=False)))) for k in positives]
        for group, keep in versions:
            sub = with_set_columns({n: v[keep] for n, v in cols.items()}, (*names, *set_names))
            xs.append(np.column_stack([sub[n] for n in (*names, *set_names)]))
            ys.append(label[keep])
            gs += [group] * int(keep.sum())
    return np.concatenate(xs), np.concatenate(ys), np.array(gs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scores", required=True, nargs="+", help="TSVs from scripts/score_tasks.py on train-split tasks")
    # kw_raw is left out by default: a raw distance shifts with language, noise and microphone,
    # while every other column is normalised per speaker or per clip.
    ap.add_argument("--columns", default=",".join(n for g in ("keyword", "speaker", "condition")
                                                   for n in scores.names(g, fitted_only=True)),
                    help="score columns to fuse (add kw_cnn for the learned matcher)")
    ap.add_argument("--set-columns", default="",
                    help="also fuse these columns as seen against each task's folder (<name>@set, <name>@top; "
                         "kws.scoring.calibrate): the *_set calibrations")
    # 1..5, not 0: a folder without positives is no platform folder, and versions without any taught
    # the fit only to refuse (CV on the train tables, docs/results.md, v5).
    ap.add_argument("--positives", default="1,2,3,4,5",
                    help="with --set-columns, each task is fitted once per count here, keeping only that many of "
                         "its positives: the fit then holds for folders with fewer positives than the platform's 5")
    ap.add_argument("--seed", type=int, default=1, help="which positives are kept (--positives)")
    ap.add_argument("--l2", type=float, default=1e-2, help="L2 weight of the logistic fit")
    ap.add_argument("--objective", choices=("task", "logistic"), default="task",
                    help="task: the logistic fit refined on the smoothed per-task MR + 9*FAR (fit_task_loss); "
                         "logistic: the logistic fit alone, as calibrations before v5")
    ap.add_argument("--task-l2", type=float, default=1e-3, help="L2 weight of the task-loss refinement")
    ap.add_argument("--tau", type=float, default=1.0, help="sigmoid width of the task loss, in fused-score units")
    ap.add_argument("--out", required=True,
                    help="pretrained/<name>.json, <name> from kws.scoring.calibrate.calibration_name: calibration.json, "
                         "calibration_keyword.json, calibration_encoder.json, ... (see FeatureConfig.artefact)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rows = [r for table in read_tables(a.scores) for r in table]
    names = tuple(a.columns.split(","))
    set_names = tuple(c for n in a.set_columns.split(",") if n for c in folder_columns(n))
    cal = fit(rows, names, set_names, [int(k) for k in a.positives.split(",")], a.seed, a.l2,
              " ".join(["python", *sys.argv]), a.objective, a.task_l2, a.tau)
    cal.save(a.out)
    log.info("wrote %s: %d tasks, train score %.3f, weights %s", a.out, cal.provenance["tasks"],
             cal.provenance["train_score"], dict(zip(cal.names, np.round(cal.weights, 2))))


def read_tables(paths: list[str]) -> list[list[dict]]:
    """The rows of each score table, task ids prefixed with the table's index (they repeat across task
    sets built with other seeds); refuses dev and practice tables."""
    tables = []
    for k, path in enumerate(paths):
        with open(path, encoding="utf-8") as f:
            tables.append([{**r, "task": f"{k}:{r['task']}"} for r in csv.DictReader(f, delimiter="\t")])
    if any(r["task"].split(":", 1)[1].startswith(("D", "P")) for t in tables for r in t):
        raise SystemExit("these look like dev (D...) or practice (P...) tasks; fit on train-split tasks only")
    return tables


def fit(rows: list[dict], names: tuple[str, ...], set_names: tuple[str, ...], positives: list[int], seed: int,
        l2: float, command: str = "", objective: str = "task", task_l2: float = 1e-3, tau: float = 1.0) -> Calibration:
    """The calibration of score table rows: logistic fusion of the columns (refined on the task loss unless
    objective is "logistic"), then the global threshold."""
    x, y, groups = task_matrix(rows, names, set_names, positives, seed)
    names += set_names
    s = Standardised.of(x)
    w, b, threshold, score, objective = fit_fusion(s.z, y, groups, l2, objective, task_l2, tau)
    return Calibration(names, tuple(s.mean.round(6)), tuple(s.std.round(6)), tuple(w.round(6)), round(b, 6),
                       round(threshold, 6), provenance={"command": command, "objective": objective, "tasks": len(set(groups)),
                                                        "clips": int(len(y)), "train_score": round(score, 4)},
                       lo=tuple(s.lo.round(6)), hi=tuple(s.hi.round(6)))


if __name__ == "__main__":
    main()
