"""scripts/fit_veto.py: where predict's veto threshold goes."""
import numpy as np

import fit_veto as fv


def test_threshold_takes_off_the_cheap_negatives_only():
    score = np.array([-2.0, -1.5, -1.0, 0.5, 1.0, 2.0, 3.0])
    positive = np.array([False, False, True, False, True, True, True])
    cost = np.where(positive, 0.2, 0.2)
    # vetoing the two lowest negatives gains 0.4; going past the positive at -1.0 loses it back
    assert -1.5 < fv.least_loss(score, positive, cost) < -1.0
    # a one-positive folder's miss costs 1: then only what lies under it is worth vetoing
    cost[2] = 1.0
    assert -1.5 < fv.least_loss(score, positive, cost) < -1.0


def test_no_gain_puts_the_threshold_under_every_score():
    score = np.array([0.0, 1.0, 2.0])
    positive = np.array([True, False, True])
    assert fv.least_loss(score, positive, np.array([1.0, 0.2, 1.0])) < 0.0
