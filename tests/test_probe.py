"""scripts/probe.py: the frozen-embedding probe and the candidates it reads, on made-up data."""
import numpy as np

import probe
from kws.nn.encoder import load_multitask, multitask_trunk, trunk_layers


def test_logistic_probe_learns_classes_and_not_noise():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 8)) * 3
    y = np.repeat(np.array(["a", "b", "c"]), 60)
    x = centres[np.searchsorted(["a", "b", "c"], y)] + rng.standard_normal((180, 8))
    idx = rng.permutation(180)
    tr, te = idx[:120], idx[120:]
    assert (probe.logistic_probe(x[tr], y[tr], x[te]) == y[te]).mean() > 0.95
    shuffled = rng.permutation(y[tr])          # labels that carry nothing: near chance on held-out clips
    assert (probe.logistic_probe(x[tr], shuffled, x[te]) == y[te]).mean() < 0.6


def test_candidates_cover_every_trunk_block_and_the_heads():
    m = load_multitask()
    x = np.random.default_rng(1).standard_normal((50, m.arrays["trunk0_w"].shape[1])).astype(np.float32)
    layers = list(trunk_layers(m, x))
    assert len(layers) == len(m.dilations) and np.array_equal(layers[-1], multitask_trunk(m, x))
    t = np.arange(16000) / 16000
    wavs = [0.1 * np.sin(2 * np.pi * f * t).astype(np.float32) for f in (200, 300)]
    e = probe.embeddings(wavs)
    assert {f"encoder trunk {i + 1}" for i in range(len(m.dilations))} | {"mfcc stats", "GE2E",
            "encoder speaker head", "encoder keyword head"} == set(e)
    assert all(v.shape[0] == 2 and np.isfinite(v).all() for v in e.values())
