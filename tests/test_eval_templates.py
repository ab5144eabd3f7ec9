"""scripts/eval_templates.py: stretched takes, and the rules that weigh them."""
import numpy as np

import eval_templates as et


def test_a_stretch_keeps_the_ends_and_the_path_and_changes_the_length():
    f = np.cumsum(np.ones((10, 3), np.float32), axis=0)            # frame i is (i+1, i+1, i+1)
    assert np.array_equal(et.stretched(f, 1.0), f)
    s = et.stretched(f, 1.5)
    assert len(s) == 15 and np.allclose(s[0], f[0]) and np.allclose(s[-1], f[-1])
    assert (np.diff(s[:, 0]) > 0).all()                             # still rising frame by frame
    assert len(et.stretched(f, 0.5)) == 5


def test_the_best_version_rule_finds_a_take_said_slower():
    rng = np.random.default_rng(0)
    take = rng.normal(size=(20, 8)).astype(np.float32)
    slow = et.stretched(take, 2.5)              # past the DTW's slope of 2: the take alone cannot fit it all
    other = rng.normal(size=(50, 8)).astype(np.float32)
    got = et.rule_distances([take] * 3, [slow, other], [2.5])
    assert got["stretched, best version"][0] < got["takes"][0]
    assert got["stretched, best version"][0] < got["stretched, best version"][1]


def test_without_factors_only_the_takes_rule_and_the_same_distances():
    rng = np.random.default_rng(1)
    takes = [rng.normal(size=(int(rng.integers(15, 25)), 8)).astype(np.float32) for _ in range(5)]
    tests = [rng.normal(size=(40, 8)).astype(np.float32) for _ in range(3)]
    plain, both = et.rule_distances(takes, tests, []), et.rule_distances(takes, tests, [0.9, 1.1])
    # the same up to the last bits: a batch's products round with its shape (dtw's note on _distances_many)
    assert list(plain) == ["takes"] and np.allclose(plain["takes"], both["takes"], rtol=1e-5, atol=0)


def test_other_weights_give_the_detectors_frames_and_a_voiceprint_eer():
    from dataclasses import replace

    from synth import utterance

    from kws.config import DEFAULT
    from kws.nn.encoder import keyword_frames, load_multitask
    y = utterance(["alpha", "delta"], seed=2)
    shipped = load_multitask()
    frames = et.frames_of("encoder", shipped)
    assert np.array_equal(frames(y), keyword_frames(y, DEFAULT.second_features()))
    assert np.array_equal(et.frames_of("mfcc", shipped)(y), keyword_frames(y, DEFAULT.features))
    other = replace(shipped, arrays={k: v * 1.5 if v.dtype.kind == "f" else v for k, v in shipped.arrays.items()})
    assert not np.allclose(et.frames_of("encoder", other)(y), frames(y))    # the weights given, not the shipped ones
    low, high = ([utterance(["alpha"], f0=f0, scale=s, seed=k) for k in range(3)] for f0, s in ((100.0, 1.0), (220.0, 0.8)))
    takes = [low, high]
    tests = low + high
    target = np.array([[True] * 3 + [False] * 3, [False] * 3 + [True] * 3])
    assert et.voiceprint_eer(takes, tests, target, shipped) <= 0.2      # two voices apart: their own takes win
    assert et.voiceprint_eer(takes, tests, ~target, shipped) >= 0.8     # the labels swapped: the same scores lose
