"""The score-column registry: one named, documented function per column, read by the fit scripts."""
import subprocess
import sys

from conftest import ROOT

from kws.scoring import scores
from kws.scoring.detect import SCORE_NAMES


def test_every_column_is_a_documented_function():
    assert SCORE_NAMES == tuple(scores.COLUMNS) and len(SCORE_NAMES) == len(set(SCORE_NAMES))
    for c in scores.COLUMNS.values():
        # the second keyword front end's columns are the keyword functions again, on its frames
        base = c.name.split("_", 1)[1] if c.group == "second" else c.name
        assert c.fn.__name__ == base and c.group in scores.GROUPS
        assert (c.group == "second") == (c.switch == "second_frontend")
        assert len(c.formula) > 10, f"{c.name}: no formula in its docstring"
    assert {"kw_nm_rel", "kw_nm_t", "kw_nm_gain", "cond_snr", "kw_cnn", "spk_seg_z"} <= set(SCORE_NAMES)
    assert "kw_raw" not in scores.names("keyword", fitted_only=True)
    assert "encoder_kw_z" in scores.names("second", fitted_only=True) and "encoder_kw_raw" not in \
        scores.names("second", fitted_only=True)


def test_per_set_columns_leave_out_rare_indicators():
    per_set = scores.names("condition", fitted_only=True, per_set_only=True)
    assert "cond_snr" in per_set and "cond_clipped" not in per_set
    assert scores.names("speaker", fitted_only=True, per_set_only=True) == scores.names("speaker", fitted_only=True)
    out = subprocess.run([sys.executable, "-m", "kws.scoring.scores", "--columns", "condition", "--per-set"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert out.split(",") == list(per_set)


def test_printer_gives_the_fit_scripts_their_columns():
    out = subprocess.run([sys.executable, "-m", "kws.scoring.scores", "--columns", "speaker"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout.strip()
    assert out.split(",") == list(scores.names("speaker"))
    sh = (ROOT / "scripts" / "fit_calibrations.sh").read_text()
    assert "-m kws.scoring.scores --columns" in sh
    for name in SCORE_NAMES:   # no list spelled out again
        assert f"{name}," not in sh and f",{name}" not in sh, name
