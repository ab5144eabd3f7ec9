"""The three platform scripts and the local platform, run as the platform runs them: fresh processes."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, write
from synth import SR, utterance

from kws.metrics import parse_predictions


def run(script: str, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / script), *map(str, args)], cwd=cwd or "/", capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def enrolled(tiny_task, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("work")
    r = run("enrollment.sh", tiny_task / "data" / "S001" / "enroll", work)
    assert r.returncode == 0, r.stderr
    assert (work / "profile.json").is_file()
    return work


def predictions_for(test_dir: Path, work: Path, tmp_path: Path) -> tuple[dict, subprocess.CompletedProcess]:
    out = tmp_path / "pred.txt"
    r = run("predict.sh", test_dir, work, out)
    preds = parse_predictions(out.read_text())
    assert preds is not None, "illegal prediction file"
    wavs = {p.name for p in test_dir.iterdir() if p.suffix.lower() == ".wav"}
    assert set(preds) == wavs, "prediction file must have exactly one line per test wav"
    return preds, r


def test_tiny_task_end_to_end(tiny_task, enrolled, tmp_path):
    preds, r = predictions_for(tiny_task / "data" / "S001" / "test", enrolled, tmp_path)
    assert r.returncode == 0, r.stderr
    labels = parse_predictions((tiny_task / "solution" / "S001_test_labels.txt").read_text())
    # different words and a different voice are never accepted
    assert all(preds[f] == 0 for f, y in labels.items() if y == 0)
    assert sum(preds[f] for f, y in labels.items() if y == 1) >= 2


def bad_inputs(d: Path) -> dict[str, str]:
    """name -> the text its log line must contain."""
    d.mkdir()
    write(d / "good.wav", utterance(["alpha", "delta"], seed=3))
    (d / "notes.txt").write_text("not a wav")
    (d / "text.wav").write_text("RIFF? no, just text")
    good = (d / "good.wav").read_bytes()
    (d / "corrupt.wav").write_bytes(good[:44] + bytes(np.random.default_rng(0).integers(0, 255, 100, np.uint8)))
    (d / "truncated.wav").write_bytes(good[:20])
    from scipy.signal import resample_poly
    y = resample_poly(utterance(["alpha", "delta"], seed=4), 441, 160)
    write(d / "stereo44k.wav", np.stack([y, 0.5 * y], 1), sr=44100)
    write(d / "silence.wav", np.zeros(SR * 2, np.float32))
    (d / "empty.wav").write_bytes(b"")
    long = np.zeros(SR * 600, np.float32)
    long[SR * 300: SR * 300 + len(utterance(["bravo"]))] = utterance(["bravo"])
    write(d / "tenminutes.wav", long)
    return {"text.wav": "not readable as audio", "truncated.wav": "truncated.wav", "silence.wav": "no speech",
            "empty.wav": "0 bytes", "notes.txt": "ignoring 1 non-wav"}


def test_bad_inputs_give_clear_logs_and_complete_file(enrolled, tmp_path):
    d = tmp_path / "bad test dir"
    expect = bad_inputs(d)
    preds, r = predictions_for(d, enrolled, tmp_path)
    assert r.returncode == 0, r.stderr
    for name, text in expect.items():
        assert any(text in line for line in r.stderr.splitlines() if name in line or name == "notes.txt"), \
            f"no clear log line for {name}: {text!r}\n{r.stderr}"
    for name in ("text.wav", "empty.wav", "silence.wav", "truncated.wav"):
        assert preds[name] == 0
    assert preds["stereo44k.wav"] == 1       # converted, not rejected


def test_empty_test_dir(enrolled, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "p.txt"
    r = run("predict.sh", tmp_path / "empty", enrolled, out)
    assert r.returncode == 0 and out.read_text() == "" and "no .wav files" in r.stderr


def test_predict_without_profile_still_writes_complete_file(tiny_task, tmp_path):
    out = tmp_path / "p.txt"
    r = run("predict.sh", tiny_task / "data" / "S001" / "test", tmp_path / "nowork", out)
    assert r.returncode == 2 and "run enrollment.sh first" in r.stderr
    preds = parse_predictions(out.read_text())
    assert len(preds) == 8 and set(preds.values()) == {0}


def test_enrollment_of_unusable_clips_fails_clearly(tmp_path):
    (tmp_path / "enroll").mkdir()
    write(tmp_path / "enroll" / "a.wav", np.zeros(SR, np.float32))
    r = run("enrollment.sh", tmp_path / "enroll", tmp_path / "work")
    assert r.returncode == 2 and "no usable enrollment clip" in r.stderr and "no speech" in r.stderr


def test_local_platform_reports(tiny_task, tmp_path):
    out = tmp_path / "scoring"
    r = subprocess.run([sys.executable, str(ROOT / "run_local_test.py"), "--dataset_dir", tiny_task / "data",
                        "--solution_dir", tiny_task / "solution", "--code_dir", ROOT, "--output_dir", out],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (out / "scores.txt").read_text().startswith("score: ")
    rep = json.loads((out / "report.json").read_text())
    assert [s["speaker"] for s in rep["speakers"]] == ["S001"]
    assert rep["test_audio_seconds"] > 10 and rep["predict_rtf"] > 0
    assert set(rep["seconds"]) == {"initialize", "enrollment", "predict"}
    assert "S001" in r.stdout and "average" in r.stdout


def test_budget_kill_leaves_speaker_scored_one(tiny_task, tmp_path):
    """A predict.sh that never finishes is killed; the speaker gets 1.0, the run goes on."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "initialize.sh").write_text("exit 0\n")
    (code / "enrollment.sh").write_text("exit 0\n")
    (code / "predict.sh").write_text("sleep 1000\n")
    from kws import platform
    old = platform.PREDICT_BASE_S, platform.PREDICT_PER_AUDIO_S
    platform.PREDICT_BASE_S, platform.PREDICT_PER_AUDIO_S = 1.0, 0.0
    try:
        rep = platform.run_platform(tiny_task / "data", tiny_task / "solution", code, tmp_path / "out")
    finally:
        platform.PREDICT_BASE_S, platform.PREDICT_PER_AUDIO_S = old
    assert rep.speakers[0]["score"] == 1.0 and "budget" in rep.speakers[0]["error"]
    assert rep.seconds["predict"] < 10


def test_evaluate_command(tiny_task, tmp_path):
    preds = tmp_path / "preds"
    preds.mkdir()
    shutil.copy(tiny_task / "solution" / "S001_test_labels.txt", preds / "S001.txt")
    r = subprocess.run([sys.executable, "-m", "kws", "evaluate", "--dataset_dir", tiny_task / "data",
                        "--solution_dir", tiny_task / "solution", "--predictions_dir", preds,
                        "--output_dir", tmp_path / "o"], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "scores.txt").read_text() == "score: 0.000000\n"
