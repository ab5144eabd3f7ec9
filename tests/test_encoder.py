"""The numpy GE2E must give the embeddings of the original torch network, without importing torch."""
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from synth import utterance

from kws.nn import encoder
from kws.config import FeatureConfig
from kws.errors import WeightsError


def torch_reference(wavs: list[np.ndarray]) -> np.ndarray:
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.nn.utils.rnn import pack_sequence
    state = torch.load(encoder.ge2e_weights_path(), map_location="cpu", weights_only=True)["model_state"]
    lstm, linear = nn.LSTM(40, 256, 3, batch_first=True), nn.Linear(256, 256)
    lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
    linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
    out = []
    with torch.inference_mode():
        for y in wavs:
            parts = [torch.from_numpy(np.ascontiguousarray(p)) for p in encoder._partials(encoder.ge2e_mels(y))]
            _, (h, _) = lstm(pack_sequence(parts, enforce_sorted=False))
            e = torch.relu(linear(h[-1]))
            e = (e / e.norm(dim=1, keepdim=True)).mean(0)
            out.append((e / e.norm()).numpy())
    return np.array(out)


def test_numpy_ge2e_matches_torch():
    wavs = [utterance(["alpha", "delta"], seed=1), utterance(["bravo"] * 4, f0=200, seed=2),
            utterance(["omega"], seed=3)[:3000]]   # 1 partial, several partials, a very short clip
    got = encoder.embed_speakers(wavs, encoder.load_ge2e_wheel())
    assert got.shape == (3, 256) and np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert np.abs(got - torch_reference(wavs)).max() < 1e-4


def test_voices_differ_and_same_voice_agrees():
    a1, a2 = utterance(["alpha", "delta"], f0=110, seed=1), utterance(["bravo", "omega"], f0=110, seed=2)
    b = utterance(["alpha", "delta"], f0=220, scale=1.15, seed=3)
    e = encoder.embed_speakers([a1, a2, b])
    assert e[0] @ e[1] > e[0] @ e[2]


def test_predict_path_does_not_import_torch():
    code = ("import sys, kws.app.commands, kws.scoring.detect, kws.enrollment.enroll, kws.nn.encoder; "
            "kws.nn.encoder.load_ge2e(); print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_voiceprint_kinds():
    """encoder: the multi-task speaker head; both: unit halves, so one cosine is the mean of the two."""
    wavs = [utterance(["alpha", "delta"], f0=110, seed=1), utterance(["bravo"], f0=220, scale=1.15, seed=2)]
    g, e, b = (encoder.speaker_embeddings(wavs, k, FeatureConfig()) for k in ("ge2e", "encoder", "both"))
    assert g.shape == (2, 256) and e.shape[0] == 2 and b.shape == (2, 256 + e.shape[1])
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5) and np.allclose(np.linalg.norm(b, axis=1), 1, atol=1e-5)
    assert np.isclose(b[0] @ b[1], (g[0] @ g[1] + e[0] @ e[1]) / 2, atol=1e-5)
    assert encoder.speaker_embeddings([], "encoder", FeatureConfig()).shape[0] == 0
    with pytest.raises(ValueError, match="unknown voiceprint"):
        encoder.speaker_embeddings(wavs, "ivector", FeatureConfig())


def test_both_hears_ge2e_on_the_segment_only():
    """The detector's two views: for "both" the clip's GE2E half is its segment's (GE2E never hears the whole
    clip); the encoder half, and every other voiceprint, hear each as given."""
    clips = [utterance(["alpha", "delta", "bravo"], f0=110, seed=1), utterance(["omega", "bravo"], f0=220, seed=2)]
    segments = [y[len(y) // 4:3 * len(y) // 4] for y in clips]
    cfg = FeatureConfig()
    seg, whole = encoder.segment_and_clip_embeddings(segments, clips, "both", cfg)
    g_seg = encoder.embed_speakers(segments)
    e_seg, e_clip = (encoder.speaker_embeddings(w, "encoder", cfg) for w in (segments, clips))
    half = g_seg.shape[1]
    assert np.allclose(seg[:, :half] * np.sqrt(2), g_seg, atol=1e-5) and np.allclose(whole[:, :half], seg[:, :half])
    assert np.allclose(seg[:, half:] * np.sqrt(2), e_seg, atol=1e-5)
    assert np.allclose(whole[:, half:] * np.sqrt(2), e_clip, atol=1e-5) and not np.allclose(e_clip, e_seg, atol=1e-3)
    seg_e, whole_e = encoder.segment_and_clip_embeddings(segments, clips, "encoder", cfg)
    assert np.allclose(seg_e, e_seg, atol=1e-6) and np.allclose(whole_e, e_clip, atol=1e-6)


def test_the_trunk_of_an_input_seen_lately_is_looked_up_bit_identical():
    """With the second keyword front end, a crop's keyword frames and its whole-clip voiceprint share one trunk pass."""
    import numpy as np
    from kws.nn import encoder
    m = encoder.load_multitask()
    x = np.random.default_rng(3).standard_normal((120, m.arrays["trunk0_w"].shape[1])).astype(np.float32)
    first = encoder.cached_trunk(m, x)
    assert np.array_equal(first, encoder.multitask_trunk(m, x))
    assert encoder.cached_trunk(m, x.copy()) is first                       # looked up by content
    assert encoder.cached_trunk(m, x[:100]) is not first                    # another input: computed
    for i in range(encoder.TRUNK_CACHE + 1):                                # bounded: the oldest goes first
        encoder.cached_trunk(m, x[: 20 + i % 100] + i)
    assert len(encoder._TRUNKS) <= encoder.TRUNK_CACHE
    long = np.zeros((encoder.TRUNK_CACHE_BYTES // (4 * first.shape[1]) // 3, x.shape[1]), np.float32)   # 1/3 of the bytes
    for i in range(4):                                                      # ... and bounded in bytes
        encoder.cached_trunk(m, long + i)
    assert sum(t.nbytes for t in encoder._TRUNKS.values()) <= encoder.TRUNK_CACHE_BYTES


def test_long_inputs_go_through_the_trunk_in_pieces_with_the_same_result(monkeypatch):
    """Keyword frames and voiceprint of an input longer than VOICEPRINT_CHUNK: computed piece by piece
    (bounded memory), equal to one whole pass but for float rounding."""
    import numpy as np
    from kws.nn import encoder
    m = encoder.load_multitask()
    x = np.random.default_rng(4).standard_normal((700, m.arrays["trunk0_w"].shape[1])).astype(np.float32)
    whole = encoder.multitask_trunk(m, x)
    monkeypatch.setattr(encoder, "VOICEPRINT_CHUNK", 256)
    pieces = list(encoder.trunk_pieces(m, x))
    assert [len(p) for p in pieces] == [256, 256, 188]
    assert np.allclose(np.concatenate(pieces), whole, atol=1e-4)
    assert np.allclose(encoder.multitask_voiceprint_of(m, x), encoder.multitask_voiceprint(m, whole), atol=1e-4)


def test_the_trunk_voiceprint_is_a_projected_block_statistic(monkeypatch):
    """trunk: the second block's mean and std over time, centred and projected, unit length; a long input
    pooled piece by piece gives the same; the projection belongs to one encoder."""
    m = encoder.load_multitask()
    p = encoder.load_trunk_projection(m.sha)
    wavs = [utterance(["alpha", "delta"], f0=110, seed=1), utterance(["bravo"], f0=220, scale=1.15, seed=2)]
    t = encoder.speaker_embeddings(wavs, "trunk", FeatureConfig())
    assert t.shape == (2, p.projection.shape[1]) and np.allclose(np.linalg.norm(t, axis=1), 1, atol=1e-5)
    x = encoder.encoder_input(wavs[0], FeatureConfig())
    h = list(encoder.trunk_layers(m, x))[p.blocks - 1]
    by_hand = np.concatenate([h.mean(0), h.std(0)]) - p.mean
    assert np.allclose(t[0], by_hand @ p.projection / np.linalg.norm(by_hand @ p.projection), atol=1e-4)
    monkeypatch.setattr(encoder, "VOICEPRINT_CHUNK", 64)
    assert len(x) > 64 and np.allclose(encoder.trunk_voiceprint_of(m, p, x), t[0], atol=1e-4)
    with pytest.raises(encoder.WeightsError, match="refit"):
        encoder.load_trunk_projection("another-encoder")
    with pytest.raises(encoder.WeightsError, match="missing"):
        encoder.load_trunk_projection(m.sha, "/nonexistent/voiceprint_trunk.npz")


def test_the_tuned_ge2e_replaces_only_the_layers_its_file_holds(tmp_path):
    wheel, tuned = encoder.load_ge2e_wheel(), encoder.load_ge2e()
    first = int(np.load(encoder.PRETRAINED_DIR / encoder.GE2E_TUNED_FILE)["first_layer"])
    for k in range(encoder.LAYERS):
        same = np.array_equal(wheel.w_ih[k], tuned.w_ih[k]) and np.array_equal(wheel.w_hh[k], tuned.w_hh[k])
        assert same == (k < first)
    assert not np.array_equal(wheel.proj_w, tuned.proj_w)
    # a file tuned from other GE2E weights, or with layers of the wrong shape, is refused
    z = dict(np.load(encoder.PRETRAINED_DIR / encoder.GE2E_TUNED_FILE))
    np.savez(tmp_path / "other.npz", **{**z, "ge2e_sha": np.array("0123456789")})
    with pytest.raises(WeightsError, match="tuned from GE2E weights 0123456789"):
        encoder.load_ge2e(str(tmp_path / "other.npz"))
    np.savez(tmp_path / "shape.npz", **{**z, "proj_w": np.zeros((3, 3), np.float16)})
    with pytest.raises(WeightsError, match="other shapes"):
        encoder.load_ge2e(str(tmp_path / "shape.npz"))
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="cannot read the tuned GE2E layers"):
        encoder.load_ge2e(str(tmp_path / "bad.npz"))
