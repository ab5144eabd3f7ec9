"""scripts/fit_stream.py: which streams and candidates a fit reads."""
import json

import pytest

import fit_stream as fs

HEADER = "phrase\tstart_s\tend_s\tspot\tkind\ttruth_start\n"


def bench(root, name, split="train", speakers=("a", "b")):
    b = root / name
    tasks = []
    for k, spk in enumerate(speakers):
        task = f"S{k + 1:02d}"
        (b / task).mkdir(parents=True)
        (b / task / "rec.tsv").write_text(HEADER + "hi\t1.0\t1.5\t2.0\tpositive\t1.0\n", encoding="utf-8")
        tasks.append({"task": task, "speaker": spk, "seconds": 1800.0, "positive": 1, "other_phrase": 2})
    (b / "bench.json").write_text(json.dumps({"args": {"split": split}, "tasks": tasks}), encoding="utf-8")
    return b


def test_streams_of_several_benches_are_named_by_bench(tmp_path):
    rows, streams = fs.read_bench([bench(tmp_path, "one"), bench(tmp_path, "two")], "rec.tsv")
    assert sorted(streams.hours) == ["one/S01", "one/S02", "two/S01", "two/S02"]
    assert {r["task"] for r in rows} == set(streams.hours) and streams.hours["two/S02"] == 0.5


def test_only_the_speakers_asked_for(tmp_path):
    rows, streams = fs.read_bench([bench(tmp_path, "one")], "rec.tsv", speakers={"b"})
    assert list(streams.hours) == ["one/S02"] and [r["task"] for r in rows] == ["one/S02"]


def test_a_dev_bench_or_a_bench_twice_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="dev-split"):
        fs.read_bench([bench(tmp_path, "dev", split="dev")], "rec.tsv")
    one = bench(tmp_path, "one")
    with pytest.raises(SystemExit, match="repeat a folder name"):
        fs.read_bench([one, one], "rec.tsv")


def test_vetoed_rows_are_those_under_the_veto_threshold():
    rows = [{"veto": "0.5"}, {"veto": "2.0"}, {"veto": ""}, {}]
    assert fs.vetoed(rows, None).tolist() == [False] * 4
    assert fs.vetoed(rows, 1.0).tolist() == [True, False, False, False]   # no score: the veto never heard it


def test_the_clip_baseline_is_replayed_from_the_columns_not_the_recorded_judge(tmp_path):
    from kws.config import DEFAULT
    from kws.scoring.calibrate import Calibration
    names = Calibration.for_config(DEFAULT).names
    b = bench(tmp_path, "one", speakers=("a",))
    head = "\t".join([*HEADER.strip().split("\t"), "fused", *names])

    def loss_with(fused: float, value: float) -> float:
        line = "\t".join(["hi", "1.0", "1.5", "2.0", "positive", "1.0", str(fused), *[str(value)] * len(names)])
        (b / "S01" / "rec.tsv").write_text(head + "\n" + line + "\n", encoding="utf-8")
        rows, streams = fs.read_bench([b], "rec.tsv")
        return fs.clip_baseline(rows, streams, fs.Loss())[1]   # the miss rate of the one positive

    assert loss_with(-1e9, 0.0) == loss_with(1e9, 0.0)          # the recorded judge's score is not read
    assert {loss_with(0.0, -50.0), loss_with(0.0, 50.0)} == {0.0, 1.0}   # the columns are


def test_a_committed_judge_is_scored_on_other_candidates(tmp_path):
    """--judge: a fitted judge replayed on a bench's candidates; its threshold decides the one positive."""
    from kws.scoring.calibrate import Calibration
    b = bench(tmp_path, "one", speakers=("a",))
    (b / "S01" / "rec.tsv").write_text(HEADER.strip() + "\tkw_z\n" + "hi\t1.0\t1.5\t2.0\tpositive\t1.0\t3.0\n",
                                       encoding="utf-8")
    rows, streams = fs.read_bench([b], "rec.tsv")
    judge = lambda threshold: Calibration(("kw_z",), (0.0,), (1.0,), (1.0,), 0.0, threshold)   # noqa: E731
    assert fs.judge_loss(judge(2.0), rows, streams, fs.Loss())[1] == 0.0     # fused 3 > 2: found
    assert fs.judge_loss(judge(4.0), rows, streams, fs.Loss())[1] == 1.0     # missed


def scored_bench(root, informative: bool, streams: int = 8, voices: int | None = None):
    """A train bench whose candidates carry one column, kw_z: the positives' higher than the rest, or not."""
    import numpy as np
    rng = np.random.default_rng(0)
    b, tasks = root / ("good" if informative else "blind"), []
    for k in range(streams):
        task, lines = f"S{k + 1:02d}", []
        for j in range(12):
            positive = j < 2
            z = (3.0 if positive and informative else 0.0) + rng.normal(0, 0.5)
            kind, truth = ("positive", f"{10 * j}.0") if positive else ("word", "")
            lines.append(f"hi\t{10 * j}.0\t{10 * j + 1}.0\t2.0\t{kind}\t{truth}\t{z:.3f}")
        (b / task).mkdir(parents=True)
        (b / task / "rec.tsv").write_text(HEADER.strip() + "\tkw_z\n" + "\n".join(lines) + "\n", encoding="utf-8")
        tasks.append({"task": task, "speaker": f"v{k % (voices or streams)}", "seconds": 900.0, "positive": 2,
                      "other_phrase": 0})
    (b / "bench.json").write_text(json.dumps({"args": {"split": "train"}, "tasks": tasks}), encoding="utf-8")
    return b


@pytest.mark.parametrize("seed", [1, 2])
def test_cross_validation_judges_each_fold_with_a_judge_that_never_saw_it(tmp_path, seed, monkeypatch):
    """Every stream is held out once, by a judge fitted on the other folds' streams only. Separable candidates:
    no miss and no false alarm held out, whatever the draw; a column that carries nothing cannot be held out so."""
    settings = dict(window=8, weight=1.0, l2=1e-2, objective="logistic", tau=1.0, veto_min=None)
    loss, names = fs.Loss(), ("kw_z",)
    rows, streams = fs.read_bench([scored_bench(tmp_path, True)], "rec.tsv")
    fitted, judged, real_fit, real_loss = [], [], fs.fit, fs.stream_loss
    monkeypatch.setattr(fs, "fit", lambda rows, *a, **k: fitted.append({r["task"] for r in rows}) or real_fit(rows, *a, **k))
    monkeypatch.setattr(fs, "stream_loss", lambda f, rows, s, *a: judged.append(set(s.hours)) or real_loss(f, rows, s, *a))
    assert fs.cross_validate(rows, names, streams, loss, 4, seed, settings) == (0.0, 0.0, 0.0, 0.0)
    held = [j for j in judged if j not in fitted]    # the fits' own threshold searches see their training folds
    assert len(fitted) == len(held) == 4 and sorted(t for h in held for t in h) == sorted(streams.hours)
    assert all(not (f & h) and len(f | h) == len(streams.hours) for f, h in zip(fitted, held))
    monkeypatch.setattr(fs, "fit", real_fit)
    rows, streams = fs.read_bench([scored_bench(tmp_path, False)], "rec.tsv")
    assert fs.cross_validate(rows, names, streams, loss, 4, seed, settings)[0] > 0.2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_speakers_streams_are_held_out_together(tmp_path, seed, monkeypatch):
    """A speaker enrolled in several streams (the train benches enroll one in up to three) is never both in a
    fold's fit and in its held-out streams: a judge that met the voice or the phrase would flatter them."""
    settings = dict(window=8, weight=1.0, l2=1e-2, objective="logistic", tau=1.0, veto_min=None)
    rows, streams = fs.read_bench([scored_bench(tmp_path, True, streams=12, voices=5)], "rec.tsv")
    assert sorted(set(streams.speakers.values())) == [f"v{k}" for k in range(5)]
    fitted, real_fit = [], fs.fit
    monkeypatch.setattr(fs, "fit", lambda rows, *a, **k: fitted.append({r["task"] for r in rows}) or real_fit(rows, *a, **k))
    fs.cross_validate(rows, ("kw_z",), streams, fs.Loss(), 4, seed, settings)
    assert len(fitted) == 4
    for train in fitted:
        seen = {streams.speakers[t] for t in train}
        held = {streams.speakers[t] for t in set(streams.hours) - train}
        assert held and not seen & held


def test_caps_are_the_most_each_later_group_reached_and_change_no_training_score():
    """with_caps caps each group the listener makes later (detect.deferred_groups) at the most its weighed sum
    reached on the training rows: every training row keeps its fused score, and a row beyond the cap is held."""
    import numpy as np
    from kws.scoring.calibrate import Calibration
    names = ("kw_z", "kw_t", "kw_rev", "spk_rel", "encoder_kw_z", "encoder_kw_t")
    rng = np.random.default_rng(0)
    x = {n: rng.normal(0, 1, 300) for n in names}
    cal = Calibration(names, (0.0,) * 6, (1.0,) * 6, (1.0, 2.0, -1.0, 0.5, 1.5, 1.0), 0.0, 0.0,
                      lo=(-9.0,) * 6, hi=(9.0,) * 6)
    capped = fs.with_caps(cal, x)
    assert [g for g, _ in capped.caps] == [("kw_t", "kw_rev"), ("spk_rel",), ("encoder_kw_z",), ("encoder_kw_t",)]
    assert np.isclose(dict(capped.caps)[("kw_t", "kw_rev")], (2 * x["kw_t"] - x["kw_rev"]).max(), atol=1e-5)
    assert np.allclose(capped.fuse(x), cal.fuse(x))
    far = {n: np.array([v.max() + 5]) for n, v in x.items()}
    assert capped.fuse(far)[0] < cal.fuse(far)[0]


def test_the_breakdown_finds_the_kind_of_negative_that_costs_the_loss(tmp_path):
    """Own words scored as high as the phrase: only the oracle without them lowers the loss, two candidates on one
    word are one accepted word, and thresholds stream by stream never do worse than one shared threshold."""
    import numpy as np
    b, tasks = tmp_path / "own", []
    for k in range(4):
        lines = []
        for j in range(6):
            kind, truth, z = ("positive", f"{10 * j}.0", 3.0 + k) if j < 2 else \
                ("own_word", "50.0", 3.5 + k) if j < 4 else ("word", f"{10 * j}.0", -3.0)
            lines.append(f"hi\t{10 * j}.0\t{10 * j + 1}.0\t2.0\t{kind}\t{truth}\t{z:.3f}")
        (b / f"S{k + 1:02d}").mkdir(parents=True)
        (b / f"S{k + 1:02d}" / "rec.tsv").write_text(HEADER.strip() + "\tkw_z\n" + "\n".join(lines) + "\n",
                                                    encoding="utf-8")
        tasks.append({"task": f"S{k + 1:02d}", "speaker": f"v{k}", "seconds": 900.0, "positive": 2, "other_phrase": 0})
    (b / "bench.json").write_text(json.dumps({"args": {"split": "train"}, "tasks": tasks}), encoding="utf-8")
    rows, streams = fs.read_bench([b], "rec.tsv")
    fused = np.array([float(r["kw_z"]) for r in rows])
    got = fs.breakdown(fused, rows, streams, fs.Loss(), threshold=2.0, offsets=(0.0,))
    assert got["without_own_word"][1] < got["best"][1] == got["without_word"][1]
    assert got["without_own_word"][2] == 0.0                     # nothing left in the way of the phrase
    assert got["per_stream"] <= got["best"][1]
    assert got["sweep"][0]["accepted"] == {"word": 0, "own_word": 4, "other_phrase": 0, "pause": 0}   # one per stream
    assert got["at_threshold"][1] == 0.0 and got["at_threshold"][2] > 0                  # all found, own words too
