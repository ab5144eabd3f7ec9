#!/usr/bin/env python3
"""Build demo/: the small task set that ships, so run_local_test.py scores a real run anywhere.

    python scripts/make_demo_set.py --words ../shared/data/words --noise ../shared/data/noise

Runs ../shared/tools/make_tasks.py on the dev split (one task per dev speaker, seed 7), keeps the
tasks named by --tasks (two speakers of each corpus, a one-word and a two-word phrase each), and
stores every clip as Ogg/Opus (about a tenth of the WAV size). kws/demo.py turns it back into the
official layout (16 kHz 16-bit WAV). Dev speakers only: nothing trains or calibrates on them.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf

from kws.config import REPO_ROOT
from kws.harness.demo import DEMO_DIR, OPUS_SUFFIX


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", default="../shared/data/words")
    ap.add_argument("--noise", default="../shared/data/noise")
    ap.add_argument("--tools", default=str(REPO_ROOT.parent / "shared" / "tools"))
    ap.add_argument("--tasks", nargs="+", default=["D0001", "D0003", "D0005", "D0010"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(DEMO_DIR))
    a = ap.parse_args()
    out = Path(a.out)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(Path(a.tools) / "make_tasks.py"), "--words", a.words, "--split", "dev",
                        "--noise", a.noise, "--out", tmp, "--per-speaker", "1", "--seed", str(a.seed)], check=True)
        src = Path(tmp)
        for sub in ("data", "solution"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for task in a.tasks:
            for wav in sorted((src / "data" / task).rglob("*.wav")):
                y, sr = sf.read(wav, dtype="float32")
                dst = out / wav.relative_to(src).with_suffix(OPUS_SUFFIX)
                dst.parent.mkdir(parents=True, exist_ok=True)
                sf.write(dst, y, sr, format="OGG", subtype="OPUS")
            (out / "solution").mkdir(parents=True, exist_ok=True)
            shutil.copy(src / "solution" / f"{task}_test_labels.txt", out / "solution")
        for name in ("tasks.tsv", "test_meta.tsv"):
            with open(src / name, encoding="utf-8") as f:
                rows = list(csv.reader(f, delimiter="\t"))
            with open(out / name, "w", encoding="utf-8", newline="") as f:
                csv.writer(f, delimiter="\t", lineterminator="\n").writerows(
                    [rows[0]] + [r for r in rows[1:] if r[0] in a.tasks])
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out}: {len(a.tasks)} tasks, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
