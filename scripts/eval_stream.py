#!/usr/bin/env python3
"""Score streaming detection on a stream from make_stream.py: hits, false alarms, speed and memory.

    python scripts/eval_stream.py --profile PROFILE_DIR --stream S.wav [--truth S.tsv] [--sensitivity balanced]

One BLAS thread; the detector is fed the file block by block, as `kws detect` does.
A positive is hit when a detection's matched segment lies within its clip, widened by
--tolerance seconds on each side; every other detection is a false alarm, counted per hour of
non-target speech (the summed length of the negative clips in the stream). rtf: wall time of the
streaming loop (model loading included) over audio seconds; rtf_process: of the whole process,
imports included. Memory: resident MB and live Python objects every --rss-every s of stream.
Prints one JSON object.
"""
from __future__ import annotations

import os
import time

T_PROCESS = time.perf_counter()   # before the heavy imports: rtf_process counts them too
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads its BLAS
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
from pathlib import Path  # noqa: E402


def rss_mb() -> float:
    """Resident memory now (not the peak), from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def match(detections: list[dict], truth: list[dict], tolerance: float) -> dict:
    """Greedy one-to-one: each positive takes the first unused detection inside its widened span."""
    used, offsets, missed = set(), [], []
    for t in (r for r in truth if r["label"] == 1):
        hit = next((i for i, d in enumerate(detections) if i not in used and
                    d["start_s"] >= t["start"] - tolerance and d["end_s"] <= t["end"] + tolerance), None)
        if hit is None:
            missed.append(t["kind"])
            continue
        used.add(hit)
        d = detections[hit]
        offsets.append(max(t["start"] - d["start_s"], d["end_s"] - t["end"], 0.0))  # how far outside the clip
    fa_kinds: dict[str, int] = {}
    for i, d in enumerate(detections):
        if i not in used:
            mid = (d["start_s"] + d["end_s"]) / 2
            kind = next((t["kind"] for t in truth if t["start"] - tolerance <= mid <= t["end"] + tolerance), "pause")
            fa_kinds[kind] = fa_kinds.get(kind, 0) + 1
    return {"hits": len(used), "misses": len(missed), "missed_kinds": missed, "false_alarms": sum(fa_kinds.values()),
            "false_alarm_kinds": fa_kinds, "max_outside_clip_s": round(max(offsets, default=0.0), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--truth", default=None, help="default: the stream's .tsv from make_stream.py")
    ap.add_argument("--sensitivity", default="balanced")
    ap.add_argument("--tolerance", type=float, default=1.0)
    ap.add_argument("--rss-every", type=float, default=60.0, help="sample resident memory every N s of stream")
    ap.add_argument("--max-delay", type=float, default=None, help="StreamConfig.max_delay_s (0: live, no batching)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from dataclasses import replace

    from kws.app.api import Detector
    from kws.config import DEFAULT
    from kws.app.stream import read_blocks

    cfg = DEFAULT if a.max_delay is None else replace(DEFAULT, stream=replace(DEFAULT.stream, max_delay_s=a.max_delay))
    det = Detector(a.profile, a.sensitivity, cfg)
    stream = det.stream()
    detections, rss, next_rss = [], [], 0.0
    t0 = time.perf_counter()
    for block in read_blocks(a.stream, det.cfg.stream.block_s):
        detections += [d.to_json() for d in stream.feed(block)]
        if stream.seconds >= next_rss:   # (stream s, resident MB, live Python objects)
            rss.append((round(stream.seconds), round(rss_mb(), 1), len(gc.get_objects())))
            next_rss += a.rss_every
    detections += [d.to_json() for d in stream.flush()]
    wall = time.perf_counter() - t0
    rss.append((round(stream.seconds), round(rss_mb(), 1), len(gc.get_objects())))

    with open(a.truth or Path(a.stream).with_suffix(".tsv"), encoding="utf-8") as f:
        truth = [{**r, "start": float(r["start"]), "end": float(r["end"]), "label": int(r["label"])}
                 for r in csv.DictReader(f, delimiter="\t")]
    score = match(detections, truth, a.tolerance)
    neg_h = sum(r["end"] - r["start"] for r in truth if r["label"] == 0) / 3600
    after_warmup = [m for s, m, _ in rss if s >= 120] or [m for _, m, _ in rss]
    print(json.dumps({
        "stream": a.stream, "sensitivity": a.sensitivity, "audio_s": round(stream.seconds, 1),
        "positives": sum(r["label"] for r in truth), **score,
        "non_target_speech_h": round(neg_h, 4), "false_alarms_per_hour": round(score["false_alarms"] / neg_h, 2),
        "latency_s_median": round(sorted(d["decided_s"] - d["end_s"] for d in detections)[len(detections) // 2], 2)
        if detections else None,
        "max_delay_s": cfg.stream.max_delay_s, "rtf": round(wall / stream.seconds, 4),
        "rtf_process": round((time.perf_counter() - T_PROCESS) / stream.seconds, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_mb_after_2min_min_max": [min(after_warmup), max(after_warmup)], "rss_mb_samples": rss,
        "detections": detections if len(detections) <= 200 else len(detections),
    }))


if __name__ == "__main__":
    main()
