#!/usr/bin/env python3
"""Fit the listener's speaker veto on train-split streams: pretrained/veto_stream_<...>.json.

    python scripts/fit_veto.py --bench SCRATCH/sb-train-dense --record rec-gse.tsv \
        --set detect.second_frontend=gse [--quantile 0.02]

The candidates of each stream's record (eval_stream.py --record) that the stream judge of the configuration
accepts are heard again by GE2E (kws/scoring/veto.py) on the span the listener would hear; the threshold is
the --quantile of the accepted positives' scores: that share of the judge's hits is given up so that other
voices saying the phrase are dropped. Train streams only; dev never fits it.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

from fit_stream import apply, read_bench
from kws.config import PRETRAINED_DIR, SAMPLE_RATE, with_settings
from kws.nn.encoder import ge2e_sha
from kws.scoring.calibrate import Calibration
from kws.scoring.cohort import load_cohort
from kws.scoring.profile import SpeakerProfile
from kws.scoring.veto import SpeakerVeto, VetoThreshold, veto_name

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
        log.info("%s: %d accepted candidate(s)", task, len(idx))
    return out


def counts(rows: list[dict]) -> dict[str, int]:
    keys = lambda kind: {(r["task"], r["truth_start"]) for r in rows if r["kind"] == kind}   # noqa: E731
    return {"hits": len(keys("positive")), "other_phrases": len(keys("other_phrase")),
            "other_accepts": sum(r["kind"] != "positive" for r in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", required=True, type=Path, help="a train-split stream bench (stream_bench.py build)")
    ap.add_argument("--record", default="rec.tsv", help="each task's candidate record (eval_stream.py --record)")
    ap.add_argument("--profile", default="profile", help="each task's profile folder")
    ap.add_argument("--set", action="append", default=[], help="section.field=value: the configuration judged")
    ap.add_argument("--quantile", type=float, default=0.02, help="share of the judge's accepted positives given up")
    ap.add_argument("--out", default="", help=f"default: {PRETRAINED_DIR}/veto_stream_<configuration>.json")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = with_settings([*a.set, "stream.speaker_veto=ge2e"])
    judge = Calibration.for_stream(cfg)
    rows, _ = read_bench([a.bench], a.record)
    rows = [r for r in rows if float(r["spot"]) >= cfg.stream.spot_min_z]
    accepted = [r for r, f in zip(rows, apply(judge, rows)) if f > judge.threshold]
    score = span_scores(a.bench, accepted, cfg, a.profile)
    positive = np.array([r["kind"] == "positive" for r in accepted])
    if not positive.any():
        raise SystemExit("the judge accepts no positive on these streams: nothing to fit the veto on")
    threshold = float(np.quantile(score[positive], a.quantile))
    kept = [r for r, s in zip(accepted, score) if s >= threshold]
    before, after = counts(accepted), counts(kept)
    log.info("judge accepts %s; with the veto at %.3f: %s", before, threshold, after)
    out = Path(a.out) if a.out else PRETRAINED_DIR / veto_name(cfg)
    VetoThreshold("ge2e", round(threshold, 6), ge2e_sha(), {
        "command": " ".join(["python", *sys.argv]), "judge": judge.provenance.get("command", ""),
        "streams": len({r["task"] for r in rows}), "quantile": a.quantile,
        "train_accepted": before, "train_kept": after}).save(out)
    log.info("wrote %s", out)


if __name__ == "__main__":
    main()
