"""`python -m kws bench` measures a task set the way the platform runs it and writes bench.json."""
import json
import os
import subprocess
import sys

from conftest import ROOT
import pytest

pytestmark = pytest.mark.e2e   # runs the platform scripts, the CLI or a build in subprocesses


def test_bench_writes_every_measure(tiny_task, tmp_path):
    out = tmp_path / "bench"
    r = subprocess.run([sys.executable, "-m", "kws", "bench", "--dataset_dir", tiny_task / "data",
                        "--output_dir", out], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    b = json.loads((out / "bench.json").read_text())
    p = b["processes"]
    assert p["speakers"]["S001"]["enroll"]["ok"] and p["speakers"]["S001"]["predict"]["ok"]
    assert 0 < p["predict_rtf"] < 1 and p["enroll_s_per_speaker"] > 0 and p["process_start_s"] > 0
    assert 20 < p["peak_rss_mb"]["predict"] < 4000
    assert set(b["stages"]["cpu_s"]) >= {"audio", "vad", "features", "dtw", "encoder", "voiceprint"}
    assert all(v > 0 for v in b["stages"]["audio_s_per_cpu_s"].values())
    assert b["accuracy"]["score"] <= 1.0        # labels found beside data/
    assert "predict real-time factor" in r.stdout
