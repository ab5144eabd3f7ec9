#!/usr/bin/env python3
"""Fit the speaker veto (kws/scoring/veto.py) on train data: pretrained/veto_[stream_]<...>.json.

    python scripts/fit_veto.py --bench SCRATCH/sb-train-dense --record rec-gse.tsv \
        --set detect.second_frontend=gse [--quantile 0.02]                       # the listener's
    python scripts/fit_veto.py --tables SCRATCH/tables/encoder-{1,2,3}.tsv \
        --tasks SCRATCH/kws-train-{7,8,9}                                          # predict's

Listener: the candidates of each stream's record (eval_stream.py --record) that the configuration's stream
judge accepts are heard again on the span the listener would hear. Predict: the clips of each task's score
table (score_tasks.py, paired with its task set) that predict's decision (commands.fused_margins) accepts
are heard again on their speech crop, against the task's enrollment takes. The threshold is the --quantile
of the accepted positives' veto scores: that share of the judge's hits is given up so that other voices
saying the phrase are dropped. Train-split data only; dev never fits it.
"""
from __future__ import annotations

import argparse
import csv
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

from fit_stream import apply, read_bench
from kws.app.commands import fused_margins, load_tiers
from kws.config import PRETRAINED_DIR, SAMPLE_RATE, with_settings
from kws.enrollment.enroll import build_profile
from kws.harness.metrics import ALPHA
from kws.signal.audio import list_wavs, read_audio
from kws.nn.encoder import ge2e_sha
from kws.scoring.calibrate import Calibration
from kws.scoring.cohort import load_cohort
from kws.scoring.profile import SpeakerProfile
from kws.scoring.veto import SpeakerVeto, VetoThreshold, speech_crop, veto_name

log = logging.getLogger("fit_veto")


def span_scores(bench: Path, rows: list[dict], cfg, profile_dir: str) -> np.ndarray:
    """The veto's score of each row's span, stream by stream (rows of one bench)."""
    cohort = load_cohort(cfg=replace(cfg.features, frontend="mfcc"), voiceprint="ge2e").speaker_embeddings
    out = np.full(len(rows), np.nan)
    for task, phrase in sorted({(r["task"], r["phrase"]) for r in rows}):
        folder = bench / task.split("/", 1)[1]
        takes = SpeakerProfile.load(folder / profile_dir / phrase, cfg).template_audio
        veto = SpeakerVeto.of(takes, cohort, 0.0)
        y, sr = sf.read(folder / "stream.flac", dtype="float32")
        if sr != SAMPLE_RATE:
            raise SystemExit(f"{folder}/stream.flac: {sr} Hz, the bench writes {SAMPLE_RATE}")
        idx = [i for i, r in enumerate(rows) if r["task"] == task and r["phrase"] == phrase]
        spans = [y[max(0, int((float(rows[i]["start_s"]) - cfg.stream.span_pre_s) * sr)):
                   int((float(rows[i]["end_s"]) + cfg.stream.span_post_s) * sr)] for i in idx]
        out[idx] = veto.scores(spans)
        log.info("%s: %d candidate(s) heard", task, len(idx))
    return out


def accepted_candidates(bench: Path, record: str, profile: str, cfg) -> tuple[list[dict], np.ndarray]:
    """The stream judge's accepted candidates (rows with kind, task, truth_start) and their veto scores."""
    judge = Calibration.for_stream(cfg)
    rows, _ = read_bench([bench], record)
    rows = [r for r in rows if float(r["spot"]) >= cfg.stream.spot_min_z]
    accepted = [r for r, f in zip(rows, apply(judge, rows)) if f > judge.threshold]
    return accepted, span_scores(bench, accepted, cfg, profile)


def accepted_clips(tables: list[Path], task_sets: list[Path], cfg, positives: list[int],
                   seed: int = 1) -> tuple[list[dict], np.ndarray]:
    """Predict's accepted clips of train tasks (rows with kind, task, truth_start) and their veto scores,
    each task judged once per count in `positives` (0: as it is)."""
    tiers, out, values, rng = load_tiers(cfg), [], [], np.random.default_rng(seed)
    cohort = load_cohort(cfg=replace(cfg.features, frontend="mfcc"), voiceprint="ge2e").speaker_embeddings
    for table, tasks in zip(tables, task_sets):
        if not (tasks / "data").is_dir() or any(t.name.startswith(("D", "P")) for t in (tasks / "data").iterdir()):
            raise SystemExit(f"{tasks}: not a train task set (make_tasks.py --split train --prefix T)")
        with open(table, encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        kind = {}   # what each negative is (make_tasks.py's test_meta.tsv): other speakers' phrases are counted
        if (tasks / "test_meta.tsv").exists():
            with open(tasks / "test_meta.tsv", encoding="utf-8") as f:
                kind = {(r["task"], r["file"]): r["kind"] for r in csv.DictReader(f, delimiter="\t")}
        for task in sorted({r["task"] for r in rows}):
            every = [r for r in rows if r["task"] == task]
            pos = [i for i, r in enumerate(every) if r["label"] == "1"]
            veto, heard = None, {}
            for k in positives:     # the folder as it is (0), or with k of its positives (fit_calibration.py's)
                kept = set(rng.choice(pos, min(k, len(pos)), replace=False)) if k else set(pos)
                mine = [r for i, r in enumerate(every) if r["label"] != "1" or i in kept]
                scores = {n: np.array([float(r[n]) if r.get(n, "") not in ("", "nan") else np.nan for r in mine])
                          for n in mine[0] if n not in ("task", "file", "label")}
                margin, _ = fused_margins(tiers, scores, np.zeros(len(mine), int), cfg)
                keep = [r for r, m in zip(mine, margin) if m > 0]
                if keep and veto is None:
                    takes = build_profile(list_wavs(tasks / "data" / task / "enroll"), cfg).template_audio
                    veto = SpeakerVeto.of(takes, cohort, 0.0)
                for r in keep:
                    if r["file"] not in heard:
                        y = read_audio(tasks / "data" / task / "test" / r["file"], cfg.audio)
                        heard[r["file"]] = float(veto.scores([speech_crop(y, cfg)])[0])
                values += [heard[r["file"]] for r in keep]
                n_pos, n_neg = sum(r["label"] == "1" for r in mine), sum(r["label"] != "1" for r in mine)
                out += [{"task": f"{tasks.name}/{task}/{k}", "truth_start": r["file"],
                         "cost": 1 / n_pos if r["label"] == "1" else ALPHA / n_neg,   # of the task's MR + 9 FAR
                         "kind": "positive" if r["label"] == "1" else
                         "other_phrase" if kind.get((task, r["file"])) == "neg_other_speaker_phrase" else "negative"}
                        for r in keep]
        log.info("%s: %d accepted clip(s) so far", table, len(out))
    return out, np.array(values)


def write_records(bench: Path, record: str, out: str, profile: str, cfg) -> None:
    """Each task's record again, as `out`, with the veto score of every candidate the spotter makes."""
    rows, _ = read_bench([bench], record)
    made = [r for r in rows if float(r["spot"]) >= cfg.stream.spot_min_z]
    score = dict(zip(map(id, made), span_scores(bench, made, cfg, profile)))
    for task in sorted({r["task"] for r in rows}):
        mine = [r for r in rows if r["task"] == task]
        names = [n for n in mine[0] if n != "task"]
        with open(bench / task.split("/", 1)[1] / out, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter="\t")
            w.writerow([*names, "veto"])
            w.writerows([*(r[n] for n in names), f"{score[id(r)]:.5f}" if id(r) in score else ""] for r in mine)
    log.info("wrote %s beside %s in %d task(s)", out, record, len({r["task"] for r in rows}))


def least_loss(score: np.ndarray, positive: np.ndarray, cost: np.ndarray) -> float:
    """The threshold that most lowers the summed task losses: each negative under it takes its cost off
    (9 / negatives), each positive under it adds its cost (1 / positives); midway between scores."""
    order = np.argsort(score)
    gain = np.cumsum(np.where(positive[order], -cost[order], cost[order]))   # vetoing the first i + 1
    best = int(np.argmax(gain))
    if gain[best] <= 0:
        log.warning("the veto lowers no loss on these tasks: its threshold is put under every score")
        return float(score.min() - 1.0)
    nxt = score[order][best + 1] if best + 1 < len(order) else score[order][best] + 1.0
    log.info("the veto takes %.2f off the summed task losses", gain[best])
    return float((score[order][best] + nxt) / 2)


def counts(rows: list[dict]) -> dict[str, int]:
    keys = lambda kind: {(r["task"], r["truth_start"]) for r in rows if r["kind"] == kind}   # noqa: E731
    return {"hits": len(keys("positive")), "other_phrases": len(keys("other_phrase")),
            "other_accepts": sum(r["kind"] != "positive" for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, help="the listener's: a train-split stream bench (stream_bench.py build)")
    ap.add_argument("--record", default="rec.tsv", help="each task's candidate record (eval_stream.py --record)")
    ap.add_argument("--profile", default="profile", help="each task's profile folder")
    ap.add_argument("--tables", type=Path, nargs="+", default=[], help="predict's: train score tables (score_tasks.py)")
    ap.add_argument("--tasks", type=Path, nargs="+", default=[], help="the task set of each table, in order")
    ap.add_argument("--positives", default="0", help="predict's: each task judged as it is (0) and/or with this "
                    "many of its positives, e.g. 1,2,3,4,5 (fit_calibration.py's versions)")
    ap.add_argument("--set", action="append", default=[], help="section.field=value: the configuration judged")
    ap.add_argument("--quantile", type=float, default=0.02, help="the listener's: share of the judge's accepted "
                    "positives given up (predict's threshold is the one of least platform loss on the tables)")
    ap.add_argument("--write-record", default="", help="the listener's: write each task's record again under this "
                    "name with a `veto` column (every candidate the spotter makes), for fit_stream.py --veto-min; no fit")
    ap.add_argument("--dump", default="", help="write every accepted row and its veto score to this JSON")
    ap.add_argument("--out", default="", help=f"default: {PRETRAINED_DIR}/veto_[stream_]<configuration>.json")
    a = ap.parse_args()
    if bool(a.bench) == bool(a.tables) or len(a.tables) != len(a.tasks):
        ap.error("give --bench (the listener's veto) or --tables with as many --tasks (predict's)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = with_settings([*a.set, "detect.speaker_veto=ge2e"])
    stream = bool(a.bench)
    if a.write_record:
        if not stream:
            ap.error("--write-record needs --bench")
        write_records(a.bench, a.record, a.write_record, a.profile, cfg)
        return
    rows, score = (accepted_candidates(a.bench, a.record, a.profile, cfg) if stream
                   else accepted_clips(a.tables, a.tasks, cfg, [int(k) for k in a.positives.split(",")]))
    positive = np.array([r["kind"] == "positive" for r in rows], bool)
    if not positive.any():
        raise SystemExit("the judge accepts no positive here: nothing to fit the veto on")
    if stream:   # a prior share of hits: the train judge, fitted on these streams, leaves few of their errors
        threshold = float(np.quantile(score[positive], a.quantile))
    else:        # the platform's own loss, summed over the task versions
        threshold = least_loss(score, positive, np.array([r["cost"] for r in rows]))
    if a.dump:
        import json
        Path(a.dump).write_text(json.dumps([{**r, "veto": float(v)} for r, v in zip(rows, score)]))
    kept = [r for r, s in zip(rows, score) if s >= threshold]
    before, after = counts(rows), counts(kept)
    log.info("judge accepts %s; with the veto at %.3f: %s", before, threshold, after)
    out = Path(a.out) if a.out else PRETRAINED_DIR / veto_name(cfg, stream)
    judge = Calibration.for_stream(cfg) if stream else load_tiers(cfg)[0].calibration
    VetoThreshold("ge2e", round(threshold, 6), ge2e_sha(), {
        "command": " ".join(["python", *sys.argv]), "judge": judge.provenance.get("command", ""),
        "tasks": len({r["task"] for r in rows}),
        **({"quantile": a.quantile} if stream else {"objective": "least summed MR + 9 FAR", "positives": a.positives}),
        "train_accepted": before, "train_kept": after}).save(out)
    log.info("wrote %s", out)


if __name__ == "__main__":
    main()
