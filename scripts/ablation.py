#!/usr/bin/env python3
"""Ablation on a task set: each keyword front end, learned matcher, voiceprint and test-set
normalisation switched on and off, with errors by kind; and how test-set normalisation holds
when folders hold other numbers of positives and negatives than the platform's 5 + 45.

    python scripts/score_tasks.py --tasks SCRATCH/kws-dev --frontend mfcc --matcher --out SCRATCH/dev_mfcc.tsv
    python scripts/score_tasks.py --tasks SCRATCH/kws-dev --voiceprint encoder --out SCRATCH/dev_vp_encoder.tsv
    python scripts/ablation.py --tasks SCRATCH/kws-dev --scores mfcc=SCRATCH/dev_mfcc.tsv \
        encoder=SCRATCH/dev_encoder.tsv mfcc/voice-encoder=SCRATCH/dev_vp_encoder.tsv \
        [--compositions 5+45,1+45,0+45,5+15,5+5] [--out docs/ablation.md]

A --scores name is FRONTEND[/voice-VOICEPRINT]; a configuration is shown when its calibrations are
in pretrained/ and the scores hold its columns. Decisions go through pipeline.fused_margins with
the committed, train-fitted calibrations (nothing is fitted here), so each row is what predict.sh
would answer with that configuration.
"""
from __future__ import annotations

import argparse
import csv
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from kws.scoring.calibrate import base_columns, calibration_name
from kws.config import PRETRAINED_DIR, Config, with_frontend
from kws.harness.metrics import task_score
from kws.app.commands import Tier, fused_margins, load_tiers

VOICES = {"ge2e": "GE2E voiceprint", "encoder": "encoder voiceprint", "both": "GE2E + encoder voiceprints"}


def read_tasks(path: Path) -> dict[str, list[dict]]:
    by_task: dict[str, list[dict]] = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            by_task[r["task"]].append(r)
    return by_task


def decide(rows: list[dict], tiers: list[Tier], tier: int, cfg: Config) -> np.ndarray:
    """predict.sh's decisions for one task's clips, all scored by tiers[tier] (scripts/cv_calibration.py
    decides its held-out tables by this too)."""
    cal = tiers[tier]
    cols = sorted(base_columns(cal.calibration.names + (cal.by_set.names if cal.by_set else ())))
    scores = {n: np.array([float(r[n]) for r in rows]) for n in cols}
    scored = np.isfinite(np.column_stack([scores[n] for n in cols])).all(axis=1)
    margin, _ = fused_margins(tiers, scores, np.where(scored, tier, -1), cfg)
    return (np.nan_to_num(margin, nan=-1.0) > 0).astype(int)


def evaluate(tasks: dict[str, list[dict]], cfg: Config, keyword_only: bool, kinds: dict) -> dict:
    res, fa, miss = [], Counter(), Counter()
    tiers = load_tiers(cfg)
    for task, rows in tasks.items():
        d = decide(rows, tiers, 1 if keyword_only else 0, cfg)
        y = [int(r["label"]) for r in rows]
        res.append(task_score(y, d))
        for r, label, dec in zip(rows, y, d):
            kind = kinds.get((task, r["file"]), "?")
            fa[kind] += int(label == 0 and dec == 1)
            miss[kind] += int(label == 1 and dec == 0)
    return {"score": np.mean([s for s, _, _ in res]), "mr": np.mean([m for _, m, _ in res]),
            "far": np.mean([f for _, _, f in res]), "fa": +fa, "miss": +miss}


def configs(spec: str, has_cnn: bool):
    """(label columns, cfg, keyword_only) of every configuration a score table can answer."""
    frontend, _, voice = spec.partition("/voice-")
    voice = voice or "ge2e"
    for matcher in (False, True) if has_cnn else (False,):
        for keyword_only in (False, True) if voice == "ge2e" else (False,):
            for set_norm in (False, True):
                cfg = with_frontend(frontend)
                cfg = replace(cfg, detect=replace(cfg.detect, matcher=matcher, voiceprint=voice, set_norm=set_norm))
                needed = [calibration_name(cfg, k, s) for k in (False, True) for s in {False, set_norm}]
                if all((PRETRAINED_DIR / n).is_file() for n in needed):
                    speaker = "none (keyword scores only)" if keyword_only else VOICES[voice]
                    frames = f"{frontend} DTW" + (f" + {cfg.detect.second_frontend}" if cfg.second_features() else "")
                    yield (frames, "yes" if matcher else "no", speaker, "yes" if set_norm else "no"), cfg, keyword_only


def subsample(tasks: dict[str, list[dict]], n_pos: int, n_neg: int, seed: int) -> dict[str, list[dict]]:
    rng = np.random.default_rng(seed)
    out = {}
    for task, rows in tasks.items():
        pos = [r for r in rows if r["label"] == "1"]
        neg = [r for r in rows if r["label"] == "0"]
        pick = lambda rs, k: [rs[i] for i in sorted(rng.choice(len(rs), min(k, len(rs)), replace=False))]  # noqa: E731
        out[task] = pick(pos, n_pos) + pick(neg, n_neg)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", required=True, help="task set folder (test_meta.tsv, when there, gives error kinds)")
    ap.add_argument("--scores", nargs="+", required=True, help="FRONTEND[/voice-VOICEPRINT]=scores.tsv from score_tasks.py")
    ap.add_argument("--compositions", default="", help="e.g. 5+45,1+45,0+45,5+5: positives+negatives per folder, "
                    "subsampled from each task (10 draws), for the first score table's configurations")
    ap.add_argument("--out", default=None, help="write the markdown tables here too")
    a = ap.parse_args()
    meta = Path(a.tasks) / "test_meta.tsv"
    kinds = {}
    if meta.is_file():   # the practice set has no kinds
        with open(meta, encoding="utf-8") as f:
            kinds = {(r["task"], r["file"]): r["kind"] for r in csv.DictReader(f, delimiter="\t")}
    lines = ["| keyword frames | learned matcher | speaker check | test-set norm | score | MR | FAR "
             "| false alarms by kind | misses by kind |", "|---|---|---|---|---|---|---|---|---|"]
    tables = [(spec, read_tasks(Path(path))) for spec, path in (s.split("=", 1) for s in a.scores)]
    for spec, tasks in tables:
        has_cnn = np.isfinite(float(next(iter(tasks.values()))[0].get("kw_cnn", "nan")))
        for label, cfg, keyword_only in configs(spec, has_cnn):
            r = evaluate(tasks, cfg, keyword_only, kinds)
            fa = ", ".join(f"{k.removeprefix('neg_')} {v}" for k, v in r["fa"].most_common())
            miss = ", ".join(f"{k.removeprefix('pos_')} {v}" for k, v in sorted(r["miss"].items()))
            lines.append(f"| {' | '.join(label)} | {r['score']:.3f} | {r['mr']:.3f} | {r['far']:.4f} | "
                         f"{fa or '-'} | {miss or '-'} |")
    if a.compositions:
        spec, tasks = tables[0]
        rows = [c for c in configs(spec, False) if c[0][1] == "no"]
        lines += ["", "Folders of other compositions (mean of 10 random draws per task; score, MR, FAR):", "",
                  "| positives + negatives | " + " | ".join(
                      f"{lab[2]}, set norm {lab[3]}" for lab, _, _ in rows) + " |",
                  "|---|" + "---|" * len(rows)]
        for comp in a.compositions.split(","):
            n_pos, n_neg = (int(v) for v in comp.split("+"))
            cells = []
            for _, cfg, keyword_only in rows:
                rs = [evaluate(subsample(tasks, n_pos, n_neg, seed), cfg, keyword_only, {}) for seed in range(10)]
                cells.append(f"{np.mean([r['score'] for r in rs]):.3f} ({np.mean([r['mr'] for r in rs]):.3f}, "
                             f"{np.mean([r['far'] for r in rs]):.4f})")
            lines.append(f"| {comp} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        Path(a.out).write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
