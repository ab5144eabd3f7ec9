import pytest

from kws.harness.metrics import parse_labels, parse_predictions, score_speaker, task_score


def test_task_score_by_hand():
    labels = [1] * 5 + [0] * 45
    preds = [1, 1, 1, 1, 0] + [1] + [0] * 44          # one miss, one false alarm
    s, mr, far = task_score(labels, preds)
    assert mr == pytest.approx(0.2) and far == pytest.approx(1 / 45) and s == pytest.approx(0.4)
    assert task_score([1, 0], [1, 0]) == (0.0, 0.0, 0.0)
    assert task_score([1, 0], [0, 1])[0] == pytest.approx(10.0)


def test_missing_line_scores_one():
    labels = {"a.wav": 1, "b.wav": 0}
    r = score_speaker("S", labels, {"a.wav": 1})
    assert r.score == 1.0 and "without a prediction" in r.error
    assert score_speaker("S", labels, None).score == 1.0
    assert score_speaker("S", labels, {"a.wav": 1, "b.wav": 0}).score == 0.0


def test_illegal_lines():
    assert parse_predictions("a.wav\t1\nb.wav\t0\n") == {"a.wav": 1, "b.wav": 0}
    assert parse_predictions("a.wav\t2\n") is None
    assert parse_predictions("a.wav 1\n") is None
    assert parse_predictions("a.wav\t1\tx\n") is None
    with pytest.raises(ValueError):
        parse_labels("a.wav\tyes\n")


def test_misses_by_snr_bucket():
    from kws.harness.metrics import SpeakerResult, misses_by_snr, snr_bucket
    assert [snr_bucket(s) for s in (None, 25.0, 20.0, 15.0, 9.9, -3.0)] == \
        ["clean", ">=20 dB", ">=20 dB", "10-20 dB", "<10 dB", "<10 dB"]
    results = [SpeakerResult("A", 0.5, 0.5, 0.0, misses=["a2.wav"]), SpeakerResult("B", 0.0, 0.0, 0.0)]
    pos = {("A", "a1.wav"): None, ("A", "a2.wav"): 5.0, ("B", "b1.wav"): 4.0, ("C", "c1.wav"): 1.0}
    out = misses_by_snr(results, pos)
    assert out["<10 dB"] == {"positives": 2, "misses": 1, "miss_rate": 0.5}     # C was not evaluated
    assert out["clean"]["misses"] == 0 and out["10-20 dB"]["miss_rate"] is None
