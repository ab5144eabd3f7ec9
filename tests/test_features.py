import numpy as np
from synth import SR, utterance

from kws.config import FeatureConfig
from kws.nn.encoder import keyword_frames
from kws.signal.features import cmvn, floor_subtracted, frames_per_second, logmel, mfcc_frames, stack


def test_shapes_and_rate():
    y = utterance(["alpha"])
    cfg = FeatureConfig()
    assert logmel(y, cfg).shape == (len(y) // 160 + 1, cfg.n_mels)
    f = mfcc_frames(y, cfg)
    assert f.shape[1] == cfg.n_ceps - 1
    assert abs(len(f) - len(y) / SR * frames_per_second(cfg)) <= 1


def test_cmvn_and_stack():
    x = np.random.default_rng(0).normal(3, 2, (100, 5))
    n = cmvn(x)
    assert np.allclose(n.mean(0), 0, atol=1e-6) and np.allclose(n.std(0), 1, atol=1e-2)
    assert stack(x, 2).shape == (50, 5) and np.allclose(stack(x, 2)[0], x[:2].mean(0))
    assert stack(x[:1], 2).shape == (1, 5)


def test_gain_invariance():
    # the relative floor and CMVN make the frames independent of the recording level
    y = utterance(["delta"])
    assert np.allclose(mfcc_frames(y), mfcc_frames(0.05 * y), atol=1e-2)


def test_sliding_cmvn_matches_global_on_stationary_input_and_tracks_changes():
    from kws.signal.features import _moving_mean
    x = np.random.default_rng(0).normal(size=(37, 3))
    # against a direct centred average with edge extension
    w = 7
    pad = np.concatenate([np.repeat(x[:1], 3, 0), x, np.repeat(x[-1:], 3, 0)])
    assert np.allclose(_moving_mean(x, w), np.array([pad[i:i + w].mean(0) for i in range(len(x))]))
    # a level jump halfway is removed locally: both halves end up near zero mean
    y = np.concatenate([np.full((200, 2), 5.0), np.full((200, 2), -5.0)]) + np.random.default_rng(1).normal(size=(400, 2))
    n = cmvn(y, 50)
    assert abs(n[:150].mean()) < 0.2 and abs(n[250:].mean()) < 0.2


def test_numpy_mel_matches_torchaudio():
    """The numpy front end must reproduce torchaudio's MelSpectrogram and DCT (the cohort and calibration
    were built with them)."""
    import pytest
    torch = pytest.importorskip("torch")
    torchaudio = pytest.importorskip("torchaudio")
    from kws.signal.features import _dct, mel_power
    y = utterance(["alpha", "delta"], seed=2)
    for n_mels, f_min, f_max, slaney in ((40, 60.0, 7600.0, False), (40, 0.0, 8000.0, True)):
        ref = torchaudio.transforms.MelSpectrogram(
            sample_rate=SR, n_fft=400, win_length=400, hop_length=160, f_min=f_min, f_max=f_max, n_mels=n_mels,
            power=2.0, center=True, pad_mode="reflect", norm="slaney" if slaney else None,
            mel_scale="slaney" if slaney else "htk")(torch.from_numpy(y)).T.numpy()
        got = mel_power(y, n_mels, 400, 160, f_min, f_max, slaney)
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    assert np.allclose(_dct(40, 20), torchaudio.functional.create_dct(20, 40, "ortho").numpy(), atol=1e-6)


def test_tiny_clips_have_frames():
    """Clips shorter than half a window (torch's reflect padding refuses them) still give one frame."""
    assert logmel(np.zeros(50, np.float32)).shape == (1, FeatureConfig().n_mels)
    assert np.isfinite(mfcc_frames(np.full(100, 0.01, np.float32))).all()


def test_keyword_frame_stream_equals_mfcc_frames_however_the_audio_is_cut():
    """A stream's final columns are the clip's columns; its provisional ones are what a clip ending now
    would have, and no way of cutting the audio into pushes changes either."""
    from kws.signal.features import KeywordFrameStream
    cfg = FeatureConfig(frontend="mfcc")
    y = np.concatenate([utterance(["alpha", "delta"], seed=1), utterance(["omega"], seed=2)])
    y[:200] = 0.9 * np.sign(np.sin(np.arange(200)))   # the loudest frame first: clip and running peaks agree
    clip = mfcc_frames(y, cfg)
    for sizes in ([1600], [160, 3333, 17, 8000], [len(y)]):
        s, final, i, n = KeywordFrameStream(cfg), [], 0, 0
        while i < len(y):
            f, provisional = s.push(y[i:i + sizes[n % len(sizes)]])
            final.append(f)
            i, n = i + sizes[n % len(sizes)], n + 1
        got = np.concatenate(final + [provisional])
        m = min(len(got), len(clip)) - 2   # mfcc_frames pads the clip's end (one more frame or two)
        assert len(got) >= len(clip) - 2 and np.allclose(got[:m], clip[:m], atol=2e-3)
        if sizes == [1600]:
            reference = got
        assert got.shape == reference.shape and np.allclose(got, reference, atol=1e-4)


def test_the_noise_floor_is_taken_out_and_speech_above_it_kept():
    """A stationary floor under every band, a burst 10x over it in a few bands: after floor_subtracted the
    floor sits near `keep` of its level, the burst keeps most of its power, and a clean clip's floor
    (silence) is left near zero as the noisy one's is."""
    rng = np.random.default_rng(0)
    noise = 1.0 + 0.1 * rng.random((300, 40))
    m = noise.copy()
    m[100:150, 10:20] += 10.0
    out = floor_subtracted(m.astype(np.float32))
    assert out.shape == m.shape and np.all(out > 0)
    assert np.median(out[200:, :]) < 0.2 * np.median(noise)                      # the floor: ~keep x
    assert np.median(out[110:140, 12:18]) > 0.8 * 10.0                          # the burst stays
    assert floor_subtracted(np.zeros((0, 40), np.float32)).shape == (0, 40)


def test_noise_floor_front_end_hears_a_phrase_in_noise_as_in_quiet():
    """The mfcc-ns frames of a phrase with a steady noise under it lie closer to its clean frames than MFCC's do."""
    cfg = FeatureConfig(frontend="mfcc-ns")
    clean = utterance(["alpha", "delta"], seed=1)
    hum = 0.3 * np.abs(clean).max() * np.sin(2 * np.pi * 300 * np.arange(len(clean)) / SR).astype(np.float32)
    noisy = clean + hum + 0.02 * np.random.default_rng(2).standard_normal(len(clean)).astype(np.float32)
    ns, ns_noisy = (keyword_frames(y, cfg) for y in (clean, noisy))
    mf, mf_noisy = mfcc_frames(clean, cfg), mfcc_frames(noisy, cfg)
    assert ns.shape == mf.shape
    assert np.mean((ns - ns_noisy) ** 2) < np.mean((mf - mf_noisy) ** 2)
