import numpy as np
import pytest

from kws.calibrate import Calibration, fit_logistic, fit_threshold
from kws.errors import WeightsError


def test_threshold_separates_separable_tasks():
    rng = np.random.default_rng(0)
    fused, labels, groups = [], [], []
    for g in range(4):
        fused += list(rng.normal(3, 0.3, 5)) + list(rng.normal(0, 0.3, 45))
        labels += [1] * 5 + [0] * 45
        groups += [g] * 50
    t, score = fit_threshold(np.array(fused), np.array(labels), np.array(groups))
    assert score == 0.0 and 1.0 < t < 2.5


def test_logistic_weights_point_the_right_way():
    rng = np.random.default_rng(1)
    x = np.vstack([rng.normal(1, 1, (50, 2)), rng.normal(-1, 1, (450, 2))])
    x[:, 1] = rng.normal(0, 1, 500)                    # an uninformative column
    y = np.array([1] * 50 + [0] * 450)
    w, b = fit_logistic(x, y)
    assert w[0] > 1.0 and abs(w[1]) < 0.3


def test_roundtrip_and_damage(tmp_path):
    cal = Calibration(("a", "b"), (0.0, 1.0), (1.0, 2.0), (1.0, -1.0), 0.5, 0.1)
    cal.save(tmp_path / "c.json")
    back = Calibration.load(tmp_path / "c.json")
    assert back == cal
    scores = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 5.0])}
    assert list(back.decide(scores)) == [1, 0]
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(WeightsError, match="damaged"):
        Calibration.load(tmp_path / "d.json")
    with pytest.raises(WeightsError, match="missing"):
        Calibration.load(tmp_path / "none.json")
