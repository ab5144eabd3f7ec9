"""The offline training scripts' moving parts on tiny made-up data: sampling, losses, one step."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("speechbrain")

import train_encoder as te  # noqa: E402
from train_matcher import auc  # noqa: E402


def tiny_data(n_speakers=3, texts=("zh:a", "zh:b", "en:c"), takes=2, seed=0):
    rng = np.random.default_rng(seed)
    items, x, a, lengths, owner = [], [], [], [], []
    for s in range(n_speakers):
        for t in texts:
            for _ in range(takes):
                items.append({"path": "-", "speaker": f"s{s}", "text": t, "crop": False})
                n = int(rng.integers(30, 60))
                x.append(rng.standard_normal((n, 40)))
                a.append(rng.standard_normal((n, 19)))
                lengths.append(n)
                owner.append(len(items) - 1)
    z = {"x": np.concatenate(x).astype(np.float16), "a": np.concatenate(a).astype(np.float16),
         "lengths": np.array(lengths), "owner": np.array(owner)}
    return items, z


def test_pairs_share_text_and_prefer_other_speakers():
    items, z = tiny_data()
    data = te.Batches(items, z, seed=1)
    idx = data.sample(50)
    assert len(idx) == 100
    pairs = list(zip(idx[0::2], idx[1::2]))
    assert all(data.text_id[i] == data.text_id[j] and i != j for i, j in pairs)
    assert np.mean([data.spk_id[i] != data.spk_id[j] for i, j in pairs]) > 0.6


def test_one_training_step_has_finite_losses_and_gradients():
    items, z = tiny_data()
    data = te.Batches(items, z, seed=1)
    shape = te.EncoderShape(channels=16, kw_dim=8, spk_channels=16, spk_dim=8)
    model, heads = te.MultiTaskEncoder(shape), te.Heads(shape, len(data.speakers), data.n_texts)
    idx = data.sample(4)
    crops = [data.crop(i) for i in idx]
    lengths = torch.tensor([len(c[0]) for c in crops])
    x = torch.zeros(len(idx), int(lengths.max()), 40)
    for k, (cx, _) in enumerate(crops):
        x[k, :len(cx)] = torch.from_numpy(cx)
    kw, spk = model(x, lengths)
    l_spk, l_word = heads.losses(kw, spk, lengths, torch.from_numpy(data.spk_id[idx]),
                                 torch.from_numpy(data.text_id[idx]))
    l_frame = te.frame_loss(kw, lengths, [c[1] for c in crops], data.text_id[idx], data.rng)
    loss = l_spk + l_word + l_frame
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_auc():
    assert auc(np.array([3.0, 2.0, 1.0, 0.0]), np.array([1, 1, 0, 0])) == 1.0
    assert auc(np.array([0.0, 1.0]), np.array([1, 0])) == 0.0


def test_noisy_copies_keep_the_first_two_versions_and_can_align_by_the_clean_clip(tmp_path):
    import soundfile as sf
    rng = np.random.default_rng(3)
    t = np.arange(16000) / 16000
    y = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    path = tmp_path / "w.wav"
    sf.write(path, y, 16000)
    item = {"path": str(path), "crop": False}
    noise = [rng.standard_normal(40000).astype(np.float32)]
    plain = te.featurize(item, noise, seed=5)
    more = te.featurize(item, noise, seed=5, versions=te.Versions(3, (-3.0, 0.0)))
    clean = te.featurize(item, noise, seed=5, versions=te.Versions(3, (-3.0, 0.0), align_clean=True))
    assert len(plain) == 2 and len(more) == len(clean) == 4
    for (x0, a0), (x1, a1) in zip(plain, more):        # the default recipe's versions are unchanged
        assert np.array_equal(x0, x1) and np.array_equal(a0, a1)
    assert not np.array_equal(more[2][1], more[0][1])     # a noisy copy's own MFCC differs from the clean one's
    assert all(np.array_equal(a, clean[0][1]) for _, a in clean)   # aligned by the clean clip
    assert all(np.array_equal(x, m[0]) for (x, _), m in zip(clean, more))   # the encoder's input is its own


def test_a_features_cache_is_refused_for_other_versions_of_the_clips(tmp_path):
    import soundfile as sf
    t = np.arange(8000) / 16000
    sf.write(tmp_path / "w.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "noise" / "n.wav", np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1, 16000)
    items, cache = [{"path": str(tmp_path / "w.wav"), "crop": False}], tmp_path / "work" / "features.npz"
    made = te.build_cache(items, tmp_path / "noise", cache, 1, te.Versions(2, (0.0, 5.0)))
    assert len(made["lengths"]) == 3
    again = te.build_cache(items, tmp_path / "noise", cache, 1, te.Versions(2, (0.0, 5.0)))
    assert all(np.array_equal(made[k], again[k]) for k in made)
    with pytest.raises(SystemExit, match="other versions"):
        te.build_cache(items, tmp_path / "noise", cache, 1)
    cache.with_suffix(".json").unlink()              # a cache made before the versions were recorded: the default
    assert len(te.build_cache(items, tmp_path / "noise", cache, 1)["lengths"]) == 3
