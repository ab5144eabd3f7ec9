"""Peak RSS of predict.sh and enrollment.sh on 30-minute files (issue 13, D14) -> a JSON file.

    nice -n 10 .venv/bin/python scripts/measure_memory.py --speaker ../shared/data/practice/data/P0001 \
        --out docs/memory.json

Each run is a fresh process, measured by /usr/bin/time -v (maximum resident set size). The 30-minute
files: the speaker's test clips back to back (speech all the way: the worst case for the crop), and
one enrollment take padded with quiet noise to 30 minutes; also a WAV whose header claims 1 Hz.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from kws.config import SAMPLE_RATE

ROOT = Path(__file__).resolve().parent.parent
SR, MINUTES = SAMPLE_RATE, 30


def peak_mb(cmd: list[str], timeout: float = 300.0) -> tuple[float, int, float]:
    p = subprocess.Popen(["/usr/bin/time", "-v", *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:   # the base code's 1 Hz stream ran for ever: stop it, keep its peak
        subprocess.run(["pkill", "-TERM", "-P", str(p.pid)])
        _, err = p.communicate()
    r = subprocess.CompletedProcess(cmd, p.returncode, "", err)
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", r.stderr).group(1)
    m, s = wall.split(":")[-2:]
    return round(kb / 1024, 1), r.returncode, round(60 * float(m) + float(s), 1)


def long_audio(clips: list[np.ndarray], seconds: int, rng: np.random.Generator) -> np.ndarray:
    out = np.concatenate([clips[i % len(clips)] for i in range(10 * seconds)])[: seconds * SR] \
        if clips else np.zeros(seconds * SR, np.float32)
    return (out + 1e-3 * rng.standard_normal(len(out))).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--speaker", type=Path, required=True, help="a task folder with enroll/ and test/")
    ap.add_argument("--out", type=Path, default=Path("bench_output/memory.json"))
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="kws-mem-"))
    results = {}
    try:
        enroll = sorted((a.speaker / "enroll").glob("*.wav"))
        test_clips = [sf.read(p, dtype="float32")[0] for p in sorted((a.speaker / "test").glob("*.wav"))]
        take = sf.read(enroll[0], dtype="float32")[0]
        # enrollment: four takes plus one 30-minute take (the phrase, then quiet noise)
        e_dir = tmp / "enroll"
        e_dir.mkdir()
        for p in enroll[1:]:
            shutil.copy(p, e_dir / p.name)
        long_take = long_audio([], MINUTES * 60, rng)
        long_take[SR: SR + len(take)] += take
        sf.write(e_dir / "long_take.wav", long_take, SR, subtype="PCM_16")
        del long_take
        work = tmp / "work"
        speech_dir = tmp / "enroll-speech"
        shutil.copytree(e_dir, speech_dir)
        sf.write(speech_dir / "long_take.wav", long_audio(test_clips, MINUTES * 60, rng), SR, subtype="PCM_16")
        results["enrollment, 4 takes + one 30-min take of speech"] = peak_mb(
            ["bash", str(ROOT / "enrollment.sh"), str(speech_dir), str(tmp / "work-speech")])
        results["enrollment, 4 takes + one 30-min take"] = peak_mb(
            ["bash", str(ROOT / "enrollment.sh"), str(e_dir), str(work)])
        for name, audio in (("speech", long_audio(test_clips, MINUTES * 60, rng)),
                            ("phrase in quiet noise", None)):
            t_dir = tmp / f"test-{len(results)}"
            t_dir.mkdir()
            if audio is None:
                audio = long_audio([], MINUTES * 60, rng)
                audio[SR * 600: SR * 600 + len(take)] += take
            sf.write(t_dir / "long.wav", audio, SR, subtype="PCM_16")
            del audio
            results[f"predict, one 30-min file ({name})"] = peak_mb(
                ["bash", str(ROOT / "predict.sh"), str(t_dir), str(work), str(tmp / "pred.txt")])
        one_hz = tmp / "onehz"
        one_hz.mkdir()
        sf.write(one_hz / "one_hz.wav", rng.standard_normal(20000).astype(np.float32) * 0.1, 1, subtype="PCM_16")
        results["predict, a 40 KB WAV whose header says 1 Hz"] = peak_mb(
            ["bash", str(ROOT / "predict.sh"), str(one_hz), str(work), str(tmp / "pred.txt")])
        results["detect (stream), the same 1 Hz WAV"] = peak_mb(
            [sys.executable, "-m", "kws", "detect", str(work), str(one_hz / "one_hz.wav")])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {k: {"peak_rss_mb": v[0], "exit": v[1], "wall_s": v[2]} for k, v in results.items()}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
