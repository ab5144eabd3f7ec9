#!/usr/bin/env python3
"""Ablation on a task set: each front end, with and without the learned matcher and the speaker
check, with errors by kind.

    python scripts/score_tasks.py --tasks SCRATCH/kws-dev --frontend mfcc --matcher --out SCRATCH/dev_mfcc.tsv
    python scripts/score_tasks.py --tasks SCRATCH/kws-dev --frontend encoder --out SCRATCH/dev_encoder.tsv
    python scripts/ablation.py --tasks SCRATCH/kws-dev --scores mfcc=SCRATCH/dev_mfcc.tsv \
        encoder=SCRATCH/dev_encoder.tsv [--out docs/ablation.md]

A configuration is shown when its calibration is in pretrained/ and the scores hold its columns.

Decisions use the committed, train-fitted calibrations of each front end (nothing is fitted
here), so each row is what predict.sh would answer with that configuration.
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kws.calibrate import Calibration, calibration_name  # noqa: E402
from kws.config import PRETRAINED_DIR, with_frontend  # noqa: E402
from kws.metrics import task_score  # noqa: E402

def read_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def evaluate(rows: list[dict], cal: Calibration, kinds: dict) -> dict:
    scores = {n: np.array([float(r[n]) for r in rows]) for n in cal.names}
    fused = cal.fuse(scores)
    decision = np.where(np.isfinite(fused), fused > cal.threshold, False).astype(int)
    by_task = defaultdict(lambda: ([], []))
    fa, miss = Counter(), Counter()
    for r, d in zip(rows, decision):
        by_task[r["task"]][0].append(int(r["label"]))
        by_task[r["task"]][1].append(int(d))
        kind = kinds.get((r["task"], r["file"]), "?")
        if int(r["label"]) == 0 and d:
            fa[kind] += 1
        if int(r["label"]) == 1 and not d:
            miss[kind] += 1
    res = [task_score(y, p) for y, p in by_task.values()]
    return {"score": np.mean([s for s, _, _ in res]), "mr": np.mean([m for _, m, _ in res]),
            "far": np.mean([f for _, _, f in res]), "fa": fa, "miss": miss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", required=True, help="task set folder (test_meta.tsv, when there, gives error kinds)")
    ap.add_argument("--scores", nargs="+", required=True, help="FRONTEND=scores.tsv from score_tasks.py")
    ap.add_argument("--out", default=None, help="write the markdown table here too")
    a = ap.parse_args()
    meta = Path(a.tasks) / "test_meta.tsv"
    kinds = {}
    if meta.is_file():   # the practice set has no kinds
        with open(meta, encoding="utf-8") as f:
            kinds = {(r["task"], r["file"]): r["kind"] for r in csv.DictReader(f, delimiter="\t")}
    lines = ["| keyword frames | learned matcher | speaker check | score | MR | FAR | false alarms by kind "
             "| misses by kind |", "|---|---|---|---|---|---|---|---|"]
    for spec in a.scores:
        frontend, path = spec.split("=", 1)
        rows = read_rows(Path(path))
        for matcher in (False, True):
            cfg = with_frontend(frontend)
            cfg = replace(cfg, detect=replace(cfg.detect, matcher=matcher))
            for keyword_only, label in ((False, "GE2E voiceprint"), (True, "none (keyword scores only)")):
                file = PRETRAINED_DIR / calibration_name(cfg, keyword_only)
                if not file.is_file() or (matcher and "kw_cnn" not in rows[0]):
                    continue
                r = evaluate(rows, Calibration.load(file), kinds)
                fa = ", ".join(f"{k.removeprefix('neg_')} {v}" for k, v in sorted(r["fa"].items(), key=lambda kv: -kv[1]))
                miss = ", ".join(f"{k.removeprefix('pos_')} {v}" for k, v in sorted(r["miss"].items()))
                lines.append(f"| {frontend} DTW | {'yes' if matcher else 'no'} | {label} | {r['score']:.3f} | "
                             f"{r['mr']:.3f} | {r['far']:.4f} | {fa or '-'} | {miss or '-'} |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        Path(a.out).write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
