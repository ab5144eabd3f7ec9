"""The stream's running @run/@runtop columns (kws/scoring/recent.py)."""
import numpy as np
import pytest

from kws.scoring.calibrate import TOP_PERCENTILE
from kws.scoring.recent import RecentPrior, RecentScores, recent_bases, recent_columns

NAMES = ("kw_z", *recent_columns("kw_z"), *recent_columns("spot"))


def prior(window=64, weight=4.0):
    return RecentPrior(window, weight, {"kw_z": 0.0, "spot": 1.0}, {"kw_z": 1.0, "spot": 0.5}, {"kw_z": 1.3, "spot": 1.6})


def test_bases_are_the_columns_with_running_statistics():
    assert recent_bases(NAMES) == ["kw_z", "spot"]


def test_a_stream_starts_from_its_prior():
    """Before its first candidate, a column is seen against the training population: x = prior mean,
    pushed alone, sits near 0 @run; the prior's top percentile lies above it."""
    out = RecentScores(NAMES, prior(weight=1e6)).push({"kw_z": 0.0, "spot": 1.0})
    assert out["kw_z@run"] == pytest.approx(0.0, abs=1e-3) and out["spot@run"] == pytest.approx(0.0, abs=1e-3)
    assert out["kw_z@runtop"] == pytest.approx(-1.3, abs=1e-2)


def test_the_recent_past_takes_over_and_forgets():
    """After a window of candidates around 5, a 5 is ordinary in this stream, whatever the prior said,
    and the top is the window's own percentile; older candidates leave the window."""
    rng = np.random.default_rng(0)
    rs = RecentScores(NAMES, prior(window=64, weight=0.01))
    for x in rng.normal(-3.0, 1.0, 200):          # an old regime, forgotten
        rs.push({"kw_z": x, "spot": 1.0})
    xs = rng.normal(5.0, 1.0, 64)
    for x in xs:
        out = rs.push({"kw_z": x, "spot": 1.0})
    now = rs.push({"kw_z": 5.0, "spot": 1.0})
    assert abs(now["kw_z@run"]) < 0.4
    top = np.percentile([*xs[1:], 5.0], TOP_PERCENTILE)
    assert now["kw_z@runtop"] == pytest.approx((5.0 - top) / np.std([*xs[1:], 5.0]), abs=0.3)
    assert out["kw_z@run"] != now["kw_z@run"]


def test_a_missing_score_is_left_out_of_the_statistics():
    a, b = RecentScores(NAMES, prior()), RecentScores(NAMES, prior())
    a.push({"kw_z": 2.0, "spot": 1.0})
    b.push({"kw_z": 2.0, "spot": 1.0})
    b.push({"kw_z": float("nan"), "spot": 1.0})
    assert a.push({"kw_z": 1.0, "spot": 1.0})["kw_z@run"] == pytest.approx(b.push({"kw_z": 1.0, "spot": 1.0})["kw_z@run"])
