#!/usr/bin/env python3
"""Enroll and score every task of a task set in-process; write one TSV row of named scores per test clip.

    python scripts/score_tasks.py --tasks SCRATCH/kws-train --out SCRATCH/train_scores.tsv [--speakers-half calibration]

The table feeds scripts/fit_calibration.py (train-split tasks only) and diagnostics.
"""
from __future__ import annotations

import argparse
import csv
import logging
import time
from dataclasses import replace
from pathlib import Path

import kws

kws.limit_blas_threads()  # before numpy: two tables side by side on two cores, one BLAS thread each (3-5x faster)

from kws.signal.audio import list_wavs
from kws.config import DEFAULT, FRONTENDS, VOICEPRINTS, with_frontend
from kws.scoring.detect import SCORE_NAMES
from kws.enrollment.enroll import build_profile
from kws.harness.metrics import parse_labels
from kws.app.commands import score_files
from kws.app.progress import Progress
from word_corpus import split_speakers

log = logging.getLogger("score_tasks")


def task_ids(tasks: Path, half: str) -> list[str]:
    ids = sorted(p.name for p in (tasks / "data").iterdir() if p.is_dir())
    if half == "all":
        return ids
    with open(tasks / "tasks.tsv", encoding="utf-8") as f:
        speaker = {r["task"]: r["speaker"] for r in csv.DictReader(f, delimiter="\t")}
    keep = set(split_speakers(sorted(set(speaker.values())))[1 if half == "calibration" else 0])
    return [t for t in ids if speaker[t] in keep]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", required=True, help="task set folder (data/, solution/, tasks.tsv)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--speakers-half", choices=["all", "calibration", "cohort"], default="all")
    ap.add_argument("--frontend", default=DEFAULT.features.frontend, choices=FRONTENDS)
    ap.add_argument("--matcher", action="store_true", help="also the learned matcher's kw_cnn score")
    ap.add_argument("--voiceprint", default=DEFAULT.detect.voiceprint, choices=VOICEPRINTS,
                    help="whose speaker embedding the spk_* scores use")
    ap.add_argument("--noise-match", action="store_true", help="also the noise-matched templates' kw_nm_* scores")
    ap.add_argument("--word-embedding", action="store_true",
                    help="also EfficientWord-Net's ewn_* scores (kws/nn/efficientword.py; the ewn extra)")
    ap.add_argument("--second-frontend", default=DEFAULT.detect.second_frontend, choices=("", *FRONTENDS),
                    help="also this keyword front end's <frontend>_kw_* scores ('': none)")
    a = ap.parse_args()
    cfg = with_frontend(a.frontend)
    cfg = replace(cfg, detect=replace(cfg.detect, matcher=a.matcher, voiceprint=a.voiceprint, noise_match=a.noise_match,
                                                   second_frontend=a.second_frontend, word_embedding=a.word_embedding))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)  # this script's progress; the library stays at WARNING
    tasks = Path(a.tasks)
    ids = task_ids(tasks, a.speakers_half)
    with open(a.out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["task", "file", "label", *SCORE_NAMES])
        bar = Progress(len(ids), f"scoring {tasks.name}", every_s=0)
        for t in ids:
            t0 = time.perf_counter()
            labels = parse_labels((tasks / "solution" / f"{t}_test_labels.txt").read_text())
            profile = build_profile(list_wavs(tasks / "data" / t / "enroll"), cfg)
            paths = list_wavs(tasks / "data" / t / "test")
            scores = score_files(profile, paths, cfg)
            for i, p in enumerate(paths):
                w.writerow([t, p.name, labels[p.name], *(f"{scores[k][i]:.5f}" for k in SCORE_NAMES)])
            f.flush()
            bar.update(note=f"{t} {time.perf_counter() - t0:.1f} s")
        bar.close()


if __name__ == "__main__":
    main()
