#!/usr/bin/env python3
"""Build a long test stream from one task's test clips: clips in random order with random pauses.

    python scripts/make_stream.py --tasks SCRATCH/kws-dev --task D0001 --minutes 10 --out SCRATCH/D0001.wav

Writes OUT (16 kHz mono WAV, written as it grows) and OUT with .tsv: one row per clip placed
(start, end in seconds, label, kind, file). Clips are reused in a fresh random order each pass
until the stream is long enough, so a 60-minute stream repeats each clip several times.
A faint white noise (--noise-db) runs under everything, so the pauses are not digital silence.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from kws.signal.audio import list_wavs, read_audio
from kws.config import SAMPLE_RATE
from kws.harness.metrics import parse_labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", required=True, help="task set in the official layout (data/, solution/, test_meta.tsv)")
    ap.add_argument("--task", required=True)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--pause", type=float, nargs=2, default=(0.5, 3.0), metavar=("MIN", "MAX"),
                    help="seconds of pause before each clip, uniform")
    ap.add_argument("--noise-db", type=float, default=-60.0, help="white noise under the whole stream, dBFS")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    tasks, rng = Path(a.tasks), np.random.default_rng(a.seed)
    labels = parse_labels((tasks / "solution" / f"{a.task}_test_labels.txt").read_text(encoding="utf-8"))
    kinds = {}
    if (tasks / "test_meta.tsv").is_file():
        with open(tasks / "test_meta.tsv", encoding="utf-8") as f:
            kinds = {r["file"]: r["kind"] for r in csv.DictReader(f, delimiter="\t") if r["task"] == a.task}
    clips = [(p.name, read_audio(p)) for p in list_wavs(tasks / "data" / a.task / "test")]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    noise = 10 ** (a.noise_db / 20)
    pos, rows = 0, []
    with sf.SoundFile(str(out), "w", SAMPLE_RATE, 1, "PCM_16") as f:
        while pos < a.minutes * 60 * SAMPLE_RATE:
            for i in rng.permutation(len(clips)):
                name, y = clips[i]
                gap = int(rng.uniform(*a.pause) * SAMPLE_RATE)
                x = np.concatenate([np.zeros(gap, np.float32), y])
                f.write(np.clip(x + noise * rng.standard_normal(len(x)), -1, 1))
                rows.append((round((pos + gap) / SAMPLE_RATE, 3), round((pos + len(x)) / SAMPLE_RATE, 3),
                             labels[name], kinds.get(name, "positive" if labels[name] else "negative"), name))
                pos += len(x)
    with open(out.with_suffix(".tsv"), "w", encoding="utf-8") as f:
        f.write("start\tend\tlabel\tkind\tfile\n")
        f.writelines("\t".join(map(str, r)) + "\n" for r in rows)
    print(f"{out}: {pos / SAMPLE_RATE / 60:.1f} min, {len(rows)} clips, {sum(r[2] for r in rows)} positives")


if __name__ == "__main__":
    main()
