import numpy as np
from synth import utterance

from kws.config import FeatureConfig, StreamConfig
from kws.scoring import dtw
from kws.scoring.spotter import Spotter
from kws.signal.features import frames_per_second, mfcc_frames

CFG = FeatureConfig(frontend="mfcc")


def test_spotter_finds_the_phrase_once_where_it_is_however_the_columns_come():
    takes = [mfcc_frames(utterance(["alpha", "delta"], seed=s), CFG) for s in range(5)]
    words = [mfcc_frames(utterance([w], seed=9 + i), CFG) for i, w in enumerate(["bravo", "omega", "bravo"])]
    # impostor statistics of each take: its distances to other words
    d = dtw.template_distances(takes, words)
    mu, sd = d.mean(axis=1), d.std(axis=1) + 0.05
    phrase = mfcc_frames(utterance(["alpha", "delta"], seed=42), CFG)
    test = np.concatenate([words[0], phrase, words[1], words[2]])
    a, b = len(words[0]), len(words[0]) + len(phrase)
    found = {}
    for n in (1, 5, 64):
        sp = Spotter("ad", takes, mu, sd, frames_per_second(CFG), StreamConfig(spot_min_z=1.0))
        found[n] = [c for i in range(0, len(test), n) for c in sp.push(test[i:i + n], np.zeros((0, test.shape[1])))]
    rounded = {n: [(c.start, c.end, round(c.score, 4)) for c in f] for n, f in found.items()}
    assert rounded[1] == rounded[5] == rounded[64]
    best = max(found[1], key=lambda c: c.score)
    assert best.phrase == "ad" and a - 3 <= best.start < best.end <= b + 3 and best.score > 3.0
    # the best match's path running on into the next words is not another candidate
    assert not [c for c in found[1] if best.end < c.end <= best.end + min(len(t) for t in takes)]
