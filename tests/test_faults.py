"""Faults and bad input: whatever happens, every speaker gets a complete, legal prediction file,
and every problem a user can cause is named in the log with what to do."""
import csv
import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, predictions_for, run, write
from synth import SR, utterance, word

from kws.scoring.calibrate import calibration_name
from kws.config import DEFAULT
from kws.harness.metrics import parse_predictions
from kws.app.commands import SCORES_FILE

pytestmark = pytest.mark.e2e   # runs the platform scripts, the CLI or a build in subprocesses


def scored(work: Path) -> dict[str, float]:
    """file -> fused score of the last predict (NaN: never scored)."""
    with open(work / SCORES_FILE, encoding="utf-8") as f:
        return {r["file"]: float(r["fused"]) for r in csv.DictReader(f, delimiter="\t")}


def odd_files(d: Path) -> dict[str, str]:
    """Every odd input we could think of; name -> the text its log line must contain ('' = must be scored)."""
    d.mkdir(parents=True)
    phrase = utterance(["alpha", "delta"], seed=4)
    from scipy.signal import resample_poly
    for subtype in ("PCM_U8", "PCM_24", "FLOAT", "DOUBLE", "ULAW"):
        write(d / f"{subtype.lower()}.wav", phrase, subtype=subtype)
    for rate in (8000, 22050, 48000):
        write(d / f"rate{rate}.wav", resample_poly(phrase, rate // 50, SR // 50), sr=rate)
    write(d / "six_channels.wav", np.tile(phrase[:, None], (1, 6)) * np.linspace(1, 0.5, 6))
    huge = np.zeros(SR * 60 * 20, np.float32)          # 20 minutes (the first 10 are read), the phrase at minute 5
    huge[SR * 300: SR * 300 + len(phrase)] = phrase
    write(d / "twenty_minutes.wav", huge)
    good = (d / "pcm_24.wav").read_bytes()
    nan = phrase.copy()
    nan[100] = np.nan
    sf.write(d / "nan.wav", nan, SR, subtype="FLOAT")
    (d / "empty.wav").write_bytes(b"")
    (d / "text.wav").write_text("RIFF? no, just text")
    (d / "image.wav").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (d / "random.wav").write_bytes(np.random.default_rng(0).integers(0, 255, 5000, np.uint8).tobytes())
    (d / "truncated.wav").write_bytes(good[:20])
    (d / "header_only.wav").write_bytes(good[:44])
    write(d / "silence.wav", np.zeros(SR * 2, np.float32))
    (d / "folder.wav").mkdir()
    (d / "notes.txt").write_text("not a wav")
    return {**{n: "" for n in ("pcm_u8.wav", "pcm_24.wav", "float.wav", "double.wav", "ulaw.wav", "rate8000.wav",
                               "rate22050.wav", "rate48000.wav", "six_channels.wav", "twenty_minutes.wav")},
            "nan.wav": "NaN", "empty.wav": "0 bytes", "text.wav": "not readable as audio",
            "image.wav": "not readable as audio", "random.wav": "not readable as audio",
            "truncated.wav": "truncated.wav", "header_only.wav": "header_only.wav", "silence.wav": "no speech"}


def test_odd_and_broken_files(enrolled, tmp_path):
    d = tmp_path / "odd"
    expect = odd_files(d)
    preds, r = predictions_for(d, enrolled, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "ignoring 2 non-wav entries" in r.stderr           # notes.txt and the folder named folder.wav
    fused = scored(enrolled)
    for name, text in expect.items():
        if text:
            assert preds[name] == 0 and np.isnan(fused[name]), name
            assert any(text in line for line in r.stderr.splitlines() if name in line), \
                f"no clear log line for {name}: {text!r}\n{r.stderr}"
        else:
            assert np.isfinite(fused[name]), f"{name} should have been converted and scored"
    # lossless conversions keep the phrase recognisable; 8 kHz has lost the upper half of the spectrum
    assert all(preds[n] == 1 for n in ("pcm_24.wav", "float.wav", "double.wav", "rate22050.wav", "rate48000.wav", "six_channels.wav",
                                       "twenty_minutes.wav"))


def test_paths_with_spaces_and_non_ascii(tiny_task, tmp_path):
    root = tmp_path / "données d'essai" / "测试 集"
    shutil.copytree(tiny_task / "data" / "S001" / "enroll", root / "enrôlement 1")
    test = root / "tést dir"
    test.mkdir()
    for i, p in enumerate(sorted((tiny_task / "data" / "S001" / "test").iterdir())):
        shutil.copy(p, test / f"{['é', 'テスト', 'a b', 'ü'][i % 4]} {i}.wav")
    work = root / "work dir ñ"
    r = run("enrollment.sh", root / "enrôlement 1", work, cwd=root)
    assert r.returncode == 0, r.stderr
    preds, r = predictions_for(test, work, root)
    assert r.returncode == 0, r.stderr
    assert "テスト 1.wav" in preds and sum(preds.values()) >= 2


def test_kill_midway_leaves_a_complete_legal_file(enrolled, tmp_path):
    test = tmp_path / "many"
    test.mkdir()
    clips = [utterance(w, seed=s) for s, w in enumerate([["alpha", "delta"], ["bravo"], ["omega", "bravo"]])]
    for i in range(400):
        write(test / f"t{i:04d}.wav", clips[i % 3])
    out = tmp_path / "pred.txt"
    proc = subprocess.Popen(["bash", str(ROOT / "predict.sh"), test, enrolled, out], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while not out.exists() and time.monotonic() - t0 < 60:
        time.sleep(0.01)
    time.sleep(0.3)
    assert proc.poll() is None, "predict finished before it could be killed; give it more files"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    preds = parse_predictions(out.read_text())
    assert preds is not None and len(preds) == 400


def test_a_crash_midway_keeps_finished_batches(enrolled, tiny_task, tmp_path, monkeypatch):
    from kws.app import commands as pipeline
    from kws.config import DEFAULT, Config, DetectConfig
    calls = []
    real = pipeline.score_paths

    def crash_on_second_batch(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("simulated")
        return real(*a, **kw)
    monkeypatch.setattr(pipeline, "score_paths", crash_on_second_batch)
    out = tmp_path / "pred.txt"
    cfg = Config(detect=DetectConfig(batch_files=4))
    with pytest.raises(MemoryError):
        pipeline.predict_folder(tiny_task / "data" / "S001" / "test", enrolled, out, cfg)
    preds = parse_predictions(out.read_text())
    assert len(preds) == 8
    first = sorted(preds)[:4]
    assert sum(preds[f] for f in first) >= 2 and all(preds[f] == 0 for f in sorted(preds)[4:])
    assert DEFAULT.detect.batch_files == 64


def test_deadline_degrades_then_stops(enrolled, tiny_task, tmp_path):
    from kws.config import BudgetConfig, Config, DetectConfig
    from kws.app.commands import predict_folder
    test = tiny_task / "data" / "S001" / "test"
    cfg = Config(detect=DetectConfig(batch_files=2), budget=BudgetConfig(margin_s=0.0))
    # Already past: nothing is scored, the file is complete and all 0.
    out = tmp_path / "late.txt"
    assert predict_folder(test, enrolled, out, cfg, deadline=time.time() - 1) == [0] * 8
    assert len(parse_predictions(out.read_text())) == 8
    # Tight (the full tier's prior rate would not fit, the keyword tier's does): keyword-only scores.
    tight = Config(detect=DetectConfig(batch_files=2),
                   budget=BudgetConfig(margin_s=0.0, prior_rate=(("full", 1000.0), ("keyword", 1e-6))))
    decisions = predict_folder(test, enrolled, tmp_path / "tight.txt", tight, deadline=time.time() + 60)
    rows = list(csv.DictReader(open(enrolled / SCORES_FILE, encoding="utf-8"), delimiter="\t"))
    assert all(np.isnan(float(r["spk_seg_z"])) and np.isfinite(float(r["kw_z"])) for r in rows)
    assert sum(decisions) >= 2


def test_deadline_from_environment(enrolled, tiny_task, tmp_path):
    preds, r = predictions_for(tiny_task / "data" / "S001" / "test", enrolled, tmp_path,
                               env={"KWS_DEADLINE": f"{time.time() - 5:.3f}"})
    assert r.returncode == 0 and set(preds.values()) == {0} and "out of time" in r.stderr


def test_thousand_files(enrolled, tmp_path):
    test = tmp_path / "thousand"
    test.mkdir()
    clips = [word(w, seed=s) for s, w in enumerate(["alpha", "bravo", "delta", "omega"])]
    data = []
    for i, c in enumerate(clips):
        write(tmp_path / f"c{i}.wav", np.pad(c, SR // 10) + 1e-3 * np.random.default_rng(i).standard_normal(
            len(c) + SR // 5).astype(np.float32))
        data.append((tmp_path / f"c{i}.wav").read_bytes())
    for i in range(1000):
        (test / f"f{i:04d}.wav").write_bytes(data[i % 4])
    preds, r = predictions_for(test, enrolled, tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(preds) == 1000 and np.isfinite(list(scored(enrolled).values())).all()


def copy_code(dst: Path) -> Path:
    """A copy of the submission as the platform would hold it, sharing this checkout's environment."""
    for name in ("kws", "pretrained", "scripts"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("initialize.sh", "enrollment.sh", "predict.sh", "pyproject.toml", "requirements-nodeps.txt"):
        shutil.copy(ROOT / name, dst / name)
    os.symlink(os.path.realpath(ROOT / ".venv"), dst / ".venv")
    return dst


def snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


def test_read_only_code_directory(tiny_task, tmp_path):
    code = copy_code(tmp_path / "code")
    before = snapshot(code)
    work, out = tmp_path / "work", tmp_path / "pred.txt"
    enroll, test = tiny_task / "data" / "S001" / "enroll", tiny_task / "data" / "S001" / "test"
    body = f"bash '{code}/enrollment.sh' '{enroll}' '{work}' && bash '{code}/predict.sh' '{test}' '{work}' '{out}'"
    if os.geteuid() == 0:   # root ignores permissions: make the folder truly read-only in a private mount
        if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
            pytest.skip("root without unshare: cannot make a read-only folder")
        cmd = ["unshare", "-m", "bash", "-c", f"mount --bind -o ro '{code}' '{code}' && {body}"]
    else:
        subprocess.run(["chmod", "-R", "a-w", code], check=True)
        cmd = ["bash", "-c", body]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    subprocess.run(["chmod", "-R", "u+w", code])
    assert r.returncode == 0, r.stderr
    assert len(parse_predictions(out.read_text())) == 8
    assert snapshot(code) == before


def test_parallel_enrollments_do_not_interfere(tiny_task, tmp_path):
    speakers = {}
    for s, (words, f0) in enumerate([(["alpha", "delta"], 110), (["bravo", "omega"], 180), (["omega", "alpha"], 140)]):
        d = tmp_path / f"spk{s}"
        for i in range(5):
            write(d / f"e{i}.wav", utterance(words, f0=f0, seed=10 * s + i))
        speakers[s] = d
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda s: run("enrollment.sh", speakers[s], tmp_path / f"work{s}"), speakers))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    alone = run("enrollment.sh", speakers[1], tmp_path / "alone")
    assert alone.returncode == 0
    a, b = np.load(tmp_path / "work1" / "profile.npz"), np.load(tmp_path / "alone" / "profile.npz")
    assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files if k != "meta")
    assert not np.array_equal(a["average"], np.load(tmp_path / "work0" / "profile.npz")["average"])


FULL, FULL_SET = calibration_name(DEFAULT), calibration_name(DEFAULT, by_set=True)   # the default's fits
KEYWORD = calibration_name(DEFAULT, keyword_only=True)                               # ... and its fallback tier


@pytest.mark.parametrize("damage, expect", [
    (lambda p: (p / "cohort.npz").write_bytes(b"PK\x03\x04 broken"), "cohort.npz: damaged"),
    (lambda p: (p / "cohort.npz").unlink(), "cohort.npz is missing"),
    (lambda p: (p / FULL).write_text("{not json"), f"{FULL}: damaged"),
    (lambda p: (p / KEYWORD).unlink(), f"{KEYWORD} is missing"),
    (lambda p: (p / "cohort_encoder.npz").unlink(), "cohort_encoder.npz is missing"),    # the second front end's
    (lambda p: (p / FULL_SET).write_text('{"names": []}'), f"{FULL_SET}: damaged"),
    (lambda p: (p / "cohort_voiceprints_encoder.npz").write_bytes(b"x"), "cohort_voiceprints_encoder.npz: damaged"),
    (lambda p: (p / "encoder.npz").unlink(), "encoder.npz is missing"),
])
def test_damaged_pretrained_fails_at_initialize(tmp_path, damage, expect):
    code = copy_code(tmp_path / "code")
    damage(code / "pretrained")
    # the copy shares this checkout's environment: its venv would be keyed on the copy's path
    r = run("initialize.sh", code=code, env={"KWS_VENV": os.path.realpath(ROOT / ".venv")})
    assert r.returncode != 0
    assert expect in r.stderr + r.stdout, r.stderr


def test_damaged_ge2e_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    from kws.nn import encoder
    from kws.errors import WeightsError
    bad = tmp_path / "pretrained.pt"
    bad.write_bytes(b"garbage")
    monkeypatch.setattr(encoder, "ge2e_weights_path", lambda: bad)
    encoder.load_ge2e_wheel.cache_clear()
    encoder.load_ge2e.cache_clear()
    try:
        with pytest.raises(WeightsError, match="cannot read the GE2E weights.*pip install --no-deps resemblyzer"):
            encoder.load_ge2e()
    finally:
        encoder.load_ge2e_wheel.cache_clear()
        encoder.load_ge2e.cache_clear()


def test_profile_of_another_front_end_is_refused(enrolled, tiny_task, tmp_path):
    """Templates of one front end matched against another's frames would be noise: enroll again."""
    r = run("predict.sh", tiny_task / "data" / "S001" / "test", enrolled, tmp_path / "p.txt",
            env={"KWS_FRONTEND": "encoder", "KWS_SET": "detect.second_frontend=encoder detect.voiceprint=encoder"})
    assert r.returncode == 2 and "enroll again" in r.stderr
    assert len(parse_predictions((tmp_path / "p.txt").read_text())) == 8     # still complete, all 0


def test_profile_of_another_voiceprint_is_refused(enrolled):
    from dataclasses import replace

    from kws.config import DEFAULT
    from kws.scoring.cohort import load_cohort
    from kws.scoring.detect import check_compatible
    from kws.errors import ProfileError
    from kws.scoring.profile import SpeakerProfile
    profile = SpeakerProfile.load(enrolled)
    cohort = load_cohort(cfg=DEFAULT.features, voiceprint=DEFAULT.detect.voiceprint)
    check_compatible(profile, DEFAULT, enrolled, cohort)
    other = "encoder" if DEFAULT.detect.voiceprint != "encoder" else "both"
    with pytest.raises(ProfileError, match=f"{DEFAULT.detect.voiceprint} voiceprint.*enroll again"):
        check_compatible(profile, replace(DEFAULT, detect=replace(DEFAULT.detect, voiceprint=other)), enrolled, cohort)


def test_deadline_holds_inside_a_batch(enrolled, tmp_path, caplog):
    """D9: the deadline used to be checked only between batches; the DTW now stops within a template row."""
    from kws.scoring import dtw
    from kws.config import BudgetConfig, Config
    from kws.app.commands import predict_folder
    test = tmp_path / "long"
    test.mkdir()
    clips = [utterance(w, seed=s) for s, w in enumerate([["alpha", "delta"], ["bravo", "omega"], ["delta"]])]
    write(test / "long.wav", np.concatenate([clips[i % 3] for i in range(60)]))   # ~2 min of speech, one batch
    cfg = Config(budget=BudgetConfig(margin_s=0.0, prior_rate=(("full", 1e-9), ("keyword", 1e-9))))
    with pytest.raises(dtw.OutOfTime):
        with dtw.time_limit(time.time() - 1):
            dtw.template_distances([np.ones((5, 3), np.float32)], [np.ones((9, 3), np.float32)])
    t0 = time.time()
    with caplog.at_level("WARNING"):
        assert predict_folder(test, enrolled, tmp_path / "p.txt", cfg, deadline=t0 + 0.05) == [0]
    assert "out of time inside a batch" in caplog.text and time.time() - t0 < 10
    assert len(parse_predictions((tmp_path / "p.txt").read_text())) == 1
