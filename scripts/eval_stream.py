#!/usr/bin/env python3
"""Score a listener on one stream: hits, false alarms, other speakers accepted, latency, speed and memory.

    python scripts/eval_stream.py --profile PROFILE_DIR --stream S.flac --truth S.tsv [--out R.json]
        [--sensitivity balanced] [--block 0.1] [--batch] [--set section.field=value ...]

The stream goes through the listener's own code (`Detector.stream`, live by default), fed in blocks of
--block seconds as a microphone delivers them; --batch feeds it as `kws detect` reads a file. One BLAS
thread. Truth: stream_bench.py's (kind positive / other_phrase / own_word / word, speech_end) or
make_stream.py's (label 1 = positive).

A positive is hit when a detection's matched span overlaps it, widened by --tolerance seconds (one
detection per positive); every other detection is a false alarm, counted per hour of stream. An
other_phrase (another speaker saying the phrase) is accepted when a detection lies on it. Latency:
when the detection was decided (stream time: the audio fed so far) minus the end of the phrase's speech.
rtf: wall time of the streaming loop (model loading included) over audio seconds; rtf_process: of the
whole process, imports included. Writes (or prints) one JSON object.
"""
from __future__ import annotations

import os
import time

T_PROCESS = time.perf_counter()   # before the heavy imports: rtf_process counts them too

import kws  # noqa: E402

kws.limit_blas_threads(1, force=True)   # before numpy loads its BLAS: one core per stream (taskset)

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
from pathlib import Path  # noqa: E402


def rss_mb() -> float:
    """Resident memory now (not the peak), from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def read_truth(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = []
    for r in rows:
        kind = r["kind"] if "label" not in r else ("positive" if int(r["label"]) else r["kind"])
        out.append({**r, "kind": kind, "start": float(r["start"]), "end": float(r["end"]),
                    "speech_end": float(r.get("speech_end") or r["end"])})
    return out


def match(detections: list[dict], truth: list[dict], tolerance: float) -> dict:
    """Greedy one-to-one: each positive takes the first unused detection overlapping its widened span."""
    def on(d: dict, t: dict) -> bool:
        return d["start_s"] < t["end"] + tolerance and d["end_s"] > t["start"] - tolerance

    used, latencies, missed = set(), [], []
    for t in (r for r in truth if r["kind"] == "positive"):
        hit = next((i for i, d in enumerate(detections) if i not in used and on(d, t)), None)
        if hit is None:
            missed.append(round(t["start"], 2))
            continue
        used.add(hit)
        latencies.append(round(detections[hit]["decided_s"] - t["speech_end"], 3))
    fa_kinds: dict[str, int] = {}
    for i, d in enumerate(detections):
        if i not in used:
            mid = (d["start_s"] + d["end_s"]) / 2
            kind = next((t["kind"] for t in truth if t["start"] - tolerance <= mid <= t["end"] + tolerance), "pause")
            fa_kinds[kind] = fa_kinds.get(kind, 0) + 1
    others = [t for t in truth if t["kind"] == "other_phrase"]
    accepted = sum(any(on(d, t) for d in detections) for t in others)
    return {"hits": len(used), "misses": len(missed), "missed_at_s": missed, "false_alarms": sum(fa_kinds.values()),
            "false_alarm_kinds": fa_kinds, "other_phrases": len(others), "other_accepted": accepted,
            "latencies_s": latencies}


def write_record(path: Path, stream, truth: list[dict]) -> None:
    """One row per judged candidate: where it lies, what lies there (the truth row it overlaps most), its
    scores: the table scripts/fit_stream.py fits on."""
    step = stream.step / 16000
    rows = []
    for c, fused, named in stream.trace:
        a, b = c.start * step, (c.end + 1) * step
        best = max(truth, key=lambda t: min(b, t["end"]) - max(a, t["start"]), default=None)
        over = best and min(b, best["end"]) - max(a, best["start"]) > 0
        rows.append({"phrase": c.phrase, "start_s": round(a, 3), "end_s": round(b, 3), "spot": round(c.score, 4),
                     "kind": best["kind"] if over else "pause", "truth_start": best["start"] if over else "",
                     "fused": round(fused, 4), **{k: round(v, 5) for k, v in named.items()}})
    with open(path, "w", encoding="utf-8", newline="") as f:
        # Only candidates the judge accepts get the speaker veto's `veto` column: every row's columns, in order.
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)) or ["phrase"], delimiter="\t")
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--truth", default=None, help="default: the stream's .tsv")
    ap.add_argument("--out", default="", help="write the JSON here (default: stdout)")
    ap.add_argument("--sensitivity", default="balanced")
    ap.add_argument("--tolerance", type=float, default=0.5)
    ap.add_argument("--block", type=float, default=0.1, help="seconds of audio per feed, as a microphone gives them")
    ap.add_argument("--batch", action="store_true", help="as kws detect runs on a file (not live)")
    ap.add_argument("--set", action="append", default=[], help="section.field=value (repeatable)")
    ap.add_argument("--record", default="", help="write every judged candidate, its scores and truth, to this TSV")
    ap.add_argument("--rss-every", type=float, default=60.0, help="sample resident memory every N s of stream")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from kws.app.api import Detector
    from kws.app.stream import read_blocks
    from kws.config import with_settings
    from kws.stages import CPU_SECONDS

    # Read first: a missing truth file should stop the run before the stream is scored, not after.
    truth_path = Path(a.truth or Path(a.stream).with_suffix(".tsv"))
    if not truth_path.is_file():
        ap.error(f"no truth file {truth_path} (give --truth)")
    truth = read_truth(truth_path)
    det = Detector(a.profile, a.sensitivity, with_settings(a.set))
    stream = det.stream(live=not a.batch)
    if a.record:
        stream.trace = []
    detections, rss, next_rss = [], [], 0.0
    t0 = time.perf_counter()
    for block in read_blocks(a.stream, a.block):
        detections += [d.to_json() for d in stream.feed(block)]
        if stream.seconds >= next_rss:
            rss.append((round(stream.seconds), round(rss_mb(), 1)))
            next_rss += a.rss_every
    detections += [d.to_json() for d in stream.flush()]
    wall = time.perf_counter() - t0
    rss.append((round(stream.seconds), round(rss_mb(), 1)))

    score = match(detections, truth, a.tolerance)
    hours = stream.seconds / 3600
    lat = sorted(score["latencies_s"])
    result = {
        "stream": a.stream, "sensitivity": a.sensitivity, "settings": a.set, "live": not a.batch, "block_s": a.block,
        "audio_s": round(stream.seconds, 1), "positives": sum(t["kind"] == "positive" for t in truth), **score,
        "false_alarms_per_hour": round(score["false_alarms"] / hours, 3) if hours else None,
        "latency_s_median": lat[len(lat) // 2] if lat else None,
        "rtf": round(wall / stream.seconds, 5), "rtf_process": round((time.perf_counter() - T_PROCESS) / stream.seconds, 5),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "rss_mb_samples": rss,
        "candidates_judged": stream.judged, "cpu_s_by_stage": {k: round(v, 2) for k, v in CPU_SECONDS.items()},
        "detections": detections if len(detections) <= 500 else len(detections),
    }
    if a.record:
        write_record(Path(a.record), stream, truth)
    text = json.dumps(result, ensure_ascii=False)
    if a.out:
        Path(a.out).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    main()
