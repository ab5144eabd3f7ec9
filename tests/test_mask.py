"""kws/signal/mask.py: the learned mask keeps the length, gives the clip back whole at unit gains and takes
the floor's share of it at the floor gain; the numpy network equals the torch one it was exported from."""
import numpy as np
import pytest

from kws.config import SAMPLE_RATE
from kws.errors import WeightsError
from kws.signal import mask


def tiny_net(last_bias: float, floor_gain: float = 0.01, seed: int = 0) -> mask.MaskNet:
    """A two-layer network with small random weights; the last bias pushes every gain to 1 or to the floor."""
    rng = np.random.default_rng(seed)
    n_in, width = 3 * mask.CFG.n_mels, 8
    return mask.MaskNet({"n_layers": np.array(2), "floor_gain": np.array(floor_gain),
                         "w0": 0.01 * rng.standard_normal((3 * n_in, width)), "b0": np.zeros(width), "d0": np.array(1),
                         "w1": 0.01 * rng.standard_normal((width, mask.CFG.n_mels)),
                         "b1": np.full(mask.CFG.n_mels, last_bias), "d1": np.array(1)})


def speechlike(seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    y = 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    return (y + 0.01 * np.random.default_rng(1).standard_normal(len(t))).astype(np.float32)


def test_unit_gains_give_the_clip_back_and_the_floor_takes_its_share():
    y = speechlike()
    same = mask.denoise(y, tiny_net(+40.0))
    assert len(same) == len(y)
    np.testing.assert_allclose(same, y, atol=1e-4)
    quiet = mask.denoise(y, tiny_net(-40.0, floor_gain=0.01))
    # power gain 0.01 everywhere: the amplitude falls tenfold
    assert np.sqrt(np.mean(quiet ** 2) / np.mean(y ** 2)) == pytest.approx(0.1, rel=0.02)


def test_clips_shorter_than_half_a_window_pass_unchanged():
    y = np.ones(100, np.float32)
    assert np.array_equal(mask.denoise(y, tiny_net(-40.0)), y)


def test_the_numpy_network_equals_the_torch_one():
    torch = pytest.importorskip("torch")
    import train_mask   # scripts/ (conftest puts it on the path)
    torch.manual_seed(0)
    model = train_mask.MaskModel(3 * mask.CFG.n_mels, mask.CFG.n_mels)
    net = mask.MaskNet(train_mask.export(model))
    mel = np.random.default_rng(0).random((120, mask.CFG.n_mels)).astype(np.float32) ** 4
    with torch.no_grad():
        want = model(torch.from_numpy(mask.mask_inputs(mel).T[None].copy()))[0].numpy().T
    np.testing.assert_allclose(net.gains(mel), want, atol=1e-3)   # the weights are stored as float16


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(WeightsError, match="train_mask.py"):
        mask.load_mask(str(tmp_path / "mask.npz"))
