"""EfficientWord-Net's word embedding: its features, windows and columns (the model part needs the `ewn` extra)."""
import importlib.util

import numpy as np
import pytest

from kws.config import SAMPLE_RATE
from kws.errors import KwsError
from kws.nn import efficientword
from kws.scoring import scores

installed = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("eff_word_net") is not None
needs_model = pytest.mark.skipif(not installed, reason=f"the word embedding is not installed ({efficientword.INSTALL})")


def tone(hz: float, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_log_fbank_has_the_models_shape_and_hears_the_right_band():
    low, high = efficientword.log_fbank(tone(300)), efficientword.log_fbank(tone(3000))
    assert low.shape == high.shape == (149, 64)
    assert np.argmax(low.mean(axis=0)) < np.argmax(high.mean(axis=0))
    # silence is floored, not -inf
    assert np.isfinite(efficientword.log_fbank(np.zeros(efficientword.WINDOW, np.float32))).all()


def test_windows_centre_a_short_utterance_and_cover_a_long_one():
    short = efficientword.windows(np.ones(8000, np.float32))
    assert len(short) == 1 and len(short[0]) == efficientword.WINDOW
    assert short[0][:8000].sum() == 0 and short[0][8000:16000].sum() == 8000   # centred in zeros
    long = efficientword.windows(np.arange(3 * SAMPLE_RATE, dtype=np.float32))
    assert all(len(w) == efficientword.WINDOW for w in long)
    assert long[0][0] == 0 and long[-1][-1] == 3 * SAMPLE_RATE - 1            # the first and last samples seen


def test_word_columns_are_the_top_k_cosine_and_its_gap_to_the_takes():
    cos = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9]])   # 4 takes x 2 clips
    out = scores.group_scores("word", scores.WordInputs(cos, enroll_mean=0.75, k=3))
    assert np.allclose(out["ewn_cos"], [0.8, 0.4667], atol=1e-4)
    assert np.allclose(out["ewn_gap"], out["ewn_cos"] - 0.75)


def test_missing_install_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(efficientword.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(KwsError, match="EfficientWord-Net"):
        efficientword.model_path()


@needs_model
def test_an_utterance_is_closest_to_itself():
    rng = np.random.default_rng(0)
    word = np.concatenate([tone(440, 0.4), tone(880, 0.4)])
    a, b = efficientword.embed(word), efficientword.embed(rng.normal(0, 0.1, SAMPLE_RATE).astype(np.float32))
    assert a.shape == (1, 2048) and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-4)
    assert efficientword.similarity(a, a) == pytest.approx(1.0, abs=1e-4)
    assert efficientword.similarity(a, b) < 0.99
    opts = efficientword.session().get_session_options()   # one thread; no arena (24-28 MB less at the peak)
    assert opts.intra_op_num_threads == 1 and not opts.enable_cpu_mem_arena and not opts.enable_mem_pattern


def test_predict_refuses_the_option_without_the_model_before_scoring(monkeypatch, enrolled, tiny_task, tmp_path):
    """The option without the extra: a clear error at start (not at the first batch), the all-0 file complete,
    and the set-up check (`kws check`, run by initialize.sh) says the same."""
    from dataclasses import replace

    from kws.app import commands
    from kws.config import Config
    from kws.harness.metrics import parse_predictions

    def missing():
        raise KwsError(f"the word embedding needs onnxruntime ({efficientword.INSTALL})")

    def never(*a, **k):
        raise AssertionError("a clip was scored")

    monkeypatch.setattr(efficientword, "session", missing)
    monkeypatch.setattr(commands, "score_paths", never)
    cfg = Config()
    ewn = replace(cfg, detect=replace(cfg.detect, word_embedding=True))
    out = tmp_path / "pred.txt"
    with pytest.raises(KwsError, match="kws\\[ewn\\]"):
        commands.predict_folder(tiny_task / "data" / "S001" / "test", enrolled, out, ewn)
    preds = parse_predictions(out.read_text())
    assert len(preds) == 8 and set(preds.values()) == {0}
    with pytest.raises(KwsError, match="kws\\[ewn\\]"):
        commands.check_pretrained(ewn)
    commands.check_pretrained(cfg)            # the default needs no such model
