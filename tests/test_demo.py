import shutil
import subprocess
import sys

import pytest
import soundfile as sf
from conftest import ROOT

from kws.harness import demo
from kws.errors import KwsError
from kws.harness.metrics import parse_labels

pytestmark = pytest.mark.e2e   # runs the platform scripts, the CLI or a build in subprocesses


def test_shipped_demo_decodes_to_the_official_layout(tmp_path):
    out = demo.demo_task_set(tmp_path / "tasks")
    tasks = sorted(p.name for p in (out / "data").iterdir())
    assert len(tasks) == 4
    for t in tasks:
        enroll = sorted((out / "data" / t / "enroll").glob("*.wav"))
        tests = sorted((out / "data" / t / "test").glob("*.wav"))
        labels = parse_labels((out / "solution" / f"{t}_test_labels.txt").read_text())
        assert len(enroll) == 5 and len(tests) == 50 and sum(labels.values()) == 5
        assert set(labels) == {p.name for p in tests}
        info = sf.info(tests[0])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert (out / "test_meta.tsv").is_file()
    assert demo.demo_task_set(tmp_path / "tasks") == out   # built once, then reused


def test_shipped_data_stays_small_and_credited():
    size = sum(p.stat().st_size for p in demo.DEMO_DIR.rglob("*") if p.is_file())
    assert size < 4e6
    credits = (demo.DEMO_DIR / "README.md").read_text()
    assert "MIT" in credits and "CC BY 4.0" in credits
    pretrained = sum(p.stat().st_size for p in (ROOT / "pretrained").iterdir() if p.is_file())
    assert pretrained <= 12e6     # issue 19's limit (10 MB until the listener's noise-floor cohort, v24)


def test_other_sources_say_what_they_need(tmp_path, monkeypatch):
    monkeypatch.setattr(demo.shutil, "which", lambda name: None)
    with pytest.raises(KwsError, match="needs espeak-ng"):
        demo.demo_task_set(tmp_path / "e", "espeak")
    monkeypatch.setattr(demo, "SHARED", tmp_path / "no-shared")
    with pytest.raises(KwsError, match="--demo dev needs"):
        demo.demo_task_set(tmp_path / "d", "dev")


def test_missing_shipped_demo_is_a_clear_error(tmp_path):
    with pytest.raises(KwsError, match="restore demo/ from git"):
        demo.decode_shipped(tmp_path / "nothing", tmp_path / "out")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_task_set_layout(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_espeak_tasks.py"), "--out", str(tmp_path),
                    "--tasks", "1"], check=True, capture_output=True, timeout=300)
    enroll = sorted((tmp_path / "data" / "S0001" / "enroll").glob("*.wav"))
    tests = sorted((tmp_path / "data" / "S0001" / "test").glob("*.wav"))
    labels = parse_labels((tmp_path / "solution" / "S0001_test_labels.txt").read_text())
    assert len(enroll) == 5 and len(tests) == 50
    assert set(labels) == {p.name for p in tests} and sum(labels.values()) == 5
    assert (tmp_path / "test_meta.tsv").is_file()
