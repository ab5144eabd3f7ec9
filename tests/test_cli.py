"""The personal-use commands as a user runs them: fresh processes, stdout for results, exit code 2 for mistakes."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, write
from scipy.signal import resample_poly
from synth import stream

pytestmark = pytest.mark.e2e   # runs the platform scripts, the CLI or a build in subprocesses


KWS = Path(sys.executable).parent / "kws"   # the console command of the installed package


def kws(*args, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(KWS), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A 44.1 kHz stereo FLAC with the phrase twice among other words, and where the phrase is."""
    utts = [(["bravo"], 120, 1.0), (["alpha", "delta"], 120, 1.0), (["omega", "bravo"], 120, 1.0),
            (["bravo", "alpha", "delta"], 120, 1.0), (["delta", "omega"], 120, 1.0)]
    y, truth = stream(utts, seed=7)
    y44 = resample_poly(y, 441, 160).astype(np.float32)
    path = write(tmp_path_factory.mktemp("rec") / "talk.flac", np.stack([y44, y44], 1), sr=44100)
    return path, [(s, e) for s, e, w in truth if "alpha" in w]


def test_enroll_prints_quality_report(tiny_task, tmp_path):
    takes = sorted((tiny_task / "data" / "S001" / "enroll").glob("*.wav"))
    r = kws("enroll", "--name", "alpha-delta", "--out", tmp_path / "me", *takes)
    assert r.returncode == 0, r.stderr
    assert all(t.name in r.stdout for t in takes) and "advice: all takes look fine" in r.stdout
    assert "enrolled 'alpha-delta' from 5 take(s)" in r.stdout
    assert (tmp_path / "me" / "alpha-delta" / "profile.npz").is_file()


def test_detect_prints_time_stamps_and_json(personal_profile, recording):
    path, wanted = recording
    r = kws("detect", personal_profile, path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(wanted) and all("alpha-delta" in line and "fused" in line for line in lines)
    assert lines[0].startswith("0:00:")
    assert "real-time factor" in r.stderr
    r = kws("detect", personal_profile, path, "--json", "--sensitivity", "0.5")
    found = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(found) == len(wanted)
    for d, (s, e) in zip(found, wanted):
        assert d["phrase"] == "alpha-delta" and s - 1 <= d["start_s"] < d["end_s"] <= e + 1
        assert d["fused"] > d["threshold"] and "kw_z" in d["scores"]


def test_mistakes_exit_2_with_a_clear_message(personal_profile, recording, tmp_path):
    r = kws("enroll", "a.wav", "b.wav", "c.wav")
    assert r.returncode == 2 and "--name PHRASE --out PROFILE_DIR" in r.stderr
    r = kws("detect", tmp_path / "nobody", recording[0])
    assert r.returncode == 2 and "kws enroll --name" in r.stderr
    r = kws("detect", personal_profile, recording[0], "--sensitivity", "loud")
    assert r.returncode == 2 and "fewest-misses" in r.stderr


def test_user_path_mistakes_are_messages_not_tracebacks(enrolled, tiny_task, tmp_path):
    """D10/D11: every case of scripts/bad_inputs.py's cli_cases exits 2 with a message (-p.txt works)."""
    from bad_inputs import cli_cases, run_case
    from kws.safefile import prediction_wavs
    test, enroll = tiny_task / "data" / "S001" / "test", tiny_task / "data" / "S001" / "enroll"
    names = {p.name for p in prediction_wavs(test)}
    for name, (cmd, pred) in cli_cases(tmp_path, enroll, test, enrolled).items():
        r = run_case(cmd, tmp_path, pred, names)
        assert not r["traceback"] and r["exit"] == (0 if "-p.txt" in name else 2), (name, r)
        assert r.get("file") != "BAD", (name, r)


def test_set_switches_the_configuration_and_its_calibration(tmp_path):
    r = kws("check", "--set", "detect.voiceprint=ge2e", "--set", "detect.set_norm=off")
    assert r.returncode == 2 and "calibration_plus-encoder.json is missing" in r.stderr   # no fit with 2 front ends
    r = kws("check", "--set", "detect.voiceprint=ge2e", "--set", "detect.set_norm=off", "--set", "detect.second_frontend=")
    assert r.returncode == 0, r.stderr
    assert "voiceprint ge2e" in r.stderr and "test-set normalisation off" in r.stderr
    r = kws("check", "--set", "detect.voicprint=ge2e")
    assert r.returncode == 2 and "unknown field 'voicprint' of detect" in r.stderr
    r = kws("check", "--set", "features.frontend=encoder", "--set", "detect.voiceprint=both",
            "--set", "detect.speaker_check=on", "--set", "detect.second_frontend=encoder")
    assert r.returncode == 2 and "calibration_encoder_voice-both.json is missing" in r.stderr


def test_set_reaches_the_platform_scripts_through_kws_set(tiny_task, enrolled, tmp_path):
    """A profile made under the mfcc front end is refused by predict under the encoder front end, so the
    setting did arrive; the prediction file is still complete."""
    from conftest import run
    out = tmp_path / "p.txt"
    r = run("predict.sh", tiny_task / "data" / "S001" / "test", enrolled, out,
            env={"KWS_SET": "features.frontend=encoder detect.voiceprint=encoder detect.second_frontend=encoder"})
    assert r.returncode == 2 and "enrolled with other feature settings" in r.stderr
    assert len(out.read_text().splitlines()) == 8


def test_console_command_limits_blas_threads_before_numpy():
    """The kws entry point (kws.app.cli:main) sets one BLAS thread before any command imports numpy."""
    code = ("import os, sys\n"
            "for v in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'): os.environ.pop(v, None)\n"
            "from kws.app.cli import main\nassert 'numpy' not in sys.modules\nmain(['check'])\n"
            "print(os.environ['OPENBLAS_NUM_THREADS'], 'numpy' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "True"]


def test_check_loads_the_listeners_own_artefacts():
    """kws check loads the listener's judge, veto and front-end cohort too, and says which front end it hears in."""
    r = kws("check")
    assert r.returncode == 0 and "the listener's: mfcc-ns" in r.stderr, r.stderr
    r = kws("check", "--set", "stream.frontend=")
    assert r.returncode == 0 and "the listener's: mfcc)" in r.stderr, r.stderr
    r = kws("check", "--set", "stream.frontend=gse")    # no stream judge fitted in gse: MFCC's, said so
    assert r.returncode == 0 and "the listener's: mfcc)" in r.stderr, r.stderr
