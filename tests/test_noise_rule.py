"""The noise rule: training and calibration scripts refuse the dev-only noise folder."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from noise_rule import check_training_noise

SHARED_NOISE = Path(__file__).resolve().parents[2] / "shared" / "data" / "noise"


def test_the_dev_noise_is_refused_by_path_and_by_content(tmp_path):
    dev = tmp_path / "data" / "noise"
    dev.mkdir(parents=True)
    with pytest.raises(SystemExit, match="dev-only noise"):
        check_training_noise(dev)
    copy = tmp_path / "mine"
    copy.mkdir()
    sf.write(copy / "dude_miaowing.flac", np.zeros(160, np.float32), 16000)
    with pytest.raises(SystemExit, match="dev-only noise"):
        check_training_noise(copy)
    ok = tmp_path / "train-noise"
    ok.mkdir()
    assert check_training_noise(ok) == ok.resolve()
    with pytest.raises(SystemExit, match="no such noise folder"):
        check_training_noise(tmp_path / "nowhere")


def test_train_noise_bank_is_real_babble_and_synthetic(tmp_path):
    import build_train_noise as b
    rng = np.random.default_rng(0)
    for slope in (0.0, 1.0, 2.0):
        y = b.coloured(rng, 16000, slope)
        spec = np.abs(np.fft.rfft(y)) ** 2
        low, high = spec[50:500].mean(), spec[4000:7000].mean()
        assert (low > 10 * high) == (slope >= 1.0)
    assert np.isfinite(b.hum(rng, 16000)).all() and np.isfinite(b.fan(rng, 16000)).all()
