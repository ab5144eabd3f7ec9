import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from kws.metrics import parse_labels


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
