import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from kws.enrollment.enroll import build_profile
from kws.errors import KwsError
from kws.app.commands import SCORES_FILE, predict_folder
from kws.harness.local_platform import evaluate_folder
from kws.harness.report import choose_clip, det_curve, load_rows, write_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tiny_task, tmp_path_factory) -> Path:
    """What run_local_test.py --output_dir leaves behind for one speaker, made in-process."""
    out = tmp_path_factory.mktemp("run")
    work = out / "work" / "S001"
    build_profile(sorted((tiny_task / "data" / "S001" / "enroll").glob("*.wav"))).save(work)
    predict_folder(tiny_task / "data" / "S001" / "test", work, out / "predictions" / "S001.txt")
    evaluate_folder(tiny_task / "data", tiny_task / "solution", out / "predictions", output_dir=out)
    kinds = ["pos_plain", "pos_embedded", "pos_embedded", "neg_other_word", "neg_other_word", "neg_other_word",
             "neg_other_speaker", "neg_other_speaker"]
    (out / "meta.tsv").write_text("task\tfile\tkind\n" + "".join(f"S001\tS001T{i:04d}.wav\t{k}\n"
                                                                 for i, k in enumerate(kinds, 1)))
    return out


def check_page(page: Path) -> str:
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<script" not in text and "http" not in text       # readable offline, nothing to run
    images = re.findall(r'<img src="([^"]+)"', text)
    for name in images:
        data = (page.parent / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name
    return text


def test_report_page_with_kinds_and_alignment(tiny_task, run_dir):
    page = write_report(run_dir, tiny_task / "solution", run_dir / "meta.tsv")
    text = check_page(page)
    assert re.findall(r'<img src="([^"]+)"', text) == ["det.png", "scores.png", "alignment.png"]
    assert "EER keyword (kw_z)" in text and "platform score" in text and "Alignment of S001/" in text


def test_report_cli_with_chosen_clip_and_no_audio(tiny_task, run_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "kws", "report", run_dir, "--solution_dir", tiny_task / "solution",
                        "--clip", "S001/S001T0002.wav", "--out", tmp_path / "r1"], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Alignment of S001/S001T0002.wav" in check_page(Path(r.stdout.strip()))
    # without the test audio the page still comes, without the alignment
    page = write_report(run_dir, tiny_task / "solution", dataset_dir=tmp_path / "gone", out=tmp_path / "r2")
    assert "alignment.png" not in check_page(page)
    with pytest.raises(KwsError, match="no such clip"):
        write_report(run_dir, tiny_task / "solution", clip="S001/nope.wav", out=tmp_path / "r3")
    with pytest.raises(KwsError, match=SCORES_FILE):
        write_report(tmp_path, tiny_task / "solution")


def test_det_curve_and_chosen_clip(tiny_task, run_dir):
    far, mr = det_curve(np.array([3.0, 2.0, 1.0, 0.0, np.nan]), np.array([1, 0, 1, 0, 1]))
    assert far[0] == 1.0 and mr[0] == pytest.approx(1 / 3)    # lowest threshold: NaN is never accepted
    assert far[-1] == 0.0 and mr[-1] == 1.0
    assert all(np.diff(far) <= 0) and all(np.diff(mr) >= 0)
    rows = load_rows(run_dir, tiny_task / "solution")
    assert len(rows) == 8 and {r.kind for r in rows} == {"positive", "negative"}
    worst = choose_clip(rows, threshold=1e9)   # everything rejected: the lowest-scoring positive
    assert worst.label == 1 and worst.fused == min(r.fused for r in rows if r.label == 1)


def test_eer_is_the_one_equal_error_rate():
    from kws.harness.report import eer
    assert eer(np.array([3.0, 2.0, 1.0, 0.0]), np.array([1, 1, 0, 0])) == 0.0
    assert eer(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1, 1, 0, 0])) == 1.0
    # one target below one non-target of four each: both error rates meet at 1/4
    assert eer(np.array([8, 7, 6, 4, 5, 3, 2, 1.0]), np.array([1, 1, 1, 1, 0, 0, 0, 0])) == 0.25
