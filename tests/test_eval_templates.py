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
