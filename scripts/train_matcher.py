#!/usr/bin/env python3
"""Train the learned matcher (kws/matcher.py) on train-split tasks and export pretrained/matcher.npz.

    python scripts/train_matcher.py --tasks SCRATCH/kws-train-7 SCRATCH/kws-train-8 SCRATCH/kws-train-9 \
        --work SCRATCH/matcher [--frontend mfcc]

Examples: every test clip of the tasks of the *cohort* half of the train speakers (the
calibration half stays unseen, so the fusion fitted later on its tasks judges the matcher on
new voices), enrolled from the task's own five clips; one distance matrix per clip for each of
its 3 closest enrollment templates, labelled by the task's solution. 10% of the tasks are held
out to report accuracy and AUC.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kws.signal.audio import list_wavs, read_audio
from kws.config import DEFAULT, FRONTENDS, PRETRAINED_DIR, with_frontend
from kws.scoring.detect import keyword_matches, prepare
from kws.enrollment.enroll import build_profile
from kws.errors import AudioError
from kws.scoring.matcher import MATCHER_FILE, TOP_TEMPLATES, match_matrix
from kws.harness.metrics import parse_labels
from kws.training.model import MatcherCNN
from kws.app.progress import progress
from score_tasks import task_ids

log = logging.getLogger("train_matcher")


def task_matrices(tasks: Path, task: str, cfg) -> tuple[list[np.ndarray], list[int]]:
    labels = parse_labels((tasks / "solution" / f"{task}_test_labels.txt").read_text(encoding="utf-8"))
    profile = build_profile(list_wavs(tasks / "data" / task / "enroll"), cfg)
    clips, ys = [], []
    for p in list_wavs(tasks / "data" / task / "test"):
        try:
            c = prepare(read_audio(p, cfg.audio), cfg)
        except AudioError:
            continue
        if c.has_speech:
            clips.append(c)
            ys.append(labels[p.name])
    dist, matches = keyword_matches(profile.templates, [c.frames for c in clips])
    mats, out_y = [], []
    for i, (c, y) in enumerate(zip(clips, ys)):
        for t in np.argsort(dist[:, i])[:TOP_TEMPLATES]:
            mats.append(match_matrix(profile.templates[t], c.frames, matches[t][i]))
            out_y.append(y)
    return mats, out_y


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    pos, neg = scores[y == 1], scores[y == 0]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", required=True, help="train-split task sets (make_tasks.py --split train)")
    ap.add_argument("--work", required=True, help="cache of matrices")
    ap.add_argument("--frontend", default=DEFAULT.features.frontend, choices=FRONTENDS)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="default: pretrained/matcher.npz (mfcc) or matcher_encoder.npz")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    cfg = with_frontend(a.frontend)
    out = Path(a.out or PRETRAINED_DIR / cfg.features.artefact(MATCHER_FILE))
    cache = Path(a.work) / f"matrices_{a.frontend}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            x, y, group = z["x"], z["y"], z["group"]
    else:
        xs, ys, gs = [], [], []
        for k, tasks in enumerate(map(Path, a.tasks)):
            if any(t.startswith(("D", "P")) for t in task_ids(tasks, "all")):
                raise SystemExit(f"{tasks}: dev or practice tasks; train the matcher on train-split tasks only")
            ids = task_ids(tasks, "cohort")
            for t in progress(ids, f"{tasks.name}: tasks"):
                m, yy = task_matrices(tasks, t, cfg)
                xs += m
                ys += yy
                gs += [f"{k}:{t}"] * len(yy)
        x, y, group = np.stack(xs), np.array(ys), np.array(gs)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, x=x, y=y, group=group)
    rng = np.random.default_rng(a.seed)
    torch.manual_seed(a.seed)
    groups = np.unique(group)
    held = set(rng.choice(groups, max(1, len(groups) // 10), replace=False))
    val = np.array([g in held for g in group])
    xt, yt = torch.from_numpy(x[~val]), torch.from_numpy(y[~val].astype(np.float32))
    cnn = MatcherCNN()
    opt = torch.optim.Adam(cnn.parameters(), lr=2e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=((yt == 0).sum() / (yt == 1).sum().clamp(min=1)).float())
    log.info("%d matrices (%d positive) from %d tasks; %d held out", len(y), int(y.sum()), len(groups), int(val.sum()))
    for epoch in range(a.epochs):
        cnn.train()
        order = torch.from_numpy(rng.permutation(len(yt)))
        total = 0.0
        for b in range(0, len(order), 128):
            idx = order[b:b + 128]
            loss = loss_fn(cnn(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if (epoch + 1) % 5 == 0:
            cnn.eval()
            with torch.no_grad():
                s = cnn(torch.from_numpy(x[val])).numpy()
            log.info("epoch %d: train loss %.3f, held-out AUC %.4f", epoch + 1, total / len(yt), auc(s, y[val]))
    cnn.eval()
    with torch.no_grad():
        s = cnn(torch.from_numpy(x[val])).numpy()
    np.savez(out, **cnn.export_arrays())
    meta = {"command": " ".join(["python", *sys.argv]), "matrices": int(len(y)), "positives": int(y.sum()),
            "tasks": int(len(groups)), "held_out_tasks": len(held), "held_out_auc": round(auc(s, y[val]), 4),
            "held_out_accuracy": round(float(((s > 0) == (y[val] == 1)).mean()), 4), "frontend": a.frontend}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s: %s", out, meta)


if __name__ == "__main__":
    main()
