"""kws classify (kws/classify/, kws/app/classify.py): the ALC metric, the probe, the files, the anytime learner
and its commands, on tiny generated data: three synthetic words said by varying voices."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, write
from kws.app.classify import evaluate
from kws.classify.alc import alc, mean_auc, nauc, roc_auc, transform_time
from kws.classify.anytime import folds_of, predict, train
from kws.classify.dataset import prediction_files, read_predictions, read_training, write_predictions
from kws.classify.logistic import Logistic
from kws.classify.model import ClassifierModel
from kws.errors import UsageError
from synth import utterance

WORDS = ("alpha", "bravo", "omega")


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> Path:
    """TASK/train/<word>/*.wav (6 each), TASK/test/*.wav (4 each, other voices), TASK/truth.tsv."""
    root = tmp_path_factory.mktemp("classify")
    lines = []
    for w, word in enumerate(WORDS):
        for i in range(6):
            write(root / "train" / word / f"{i}.wav", utterance([word], f0=100 + 15 * i, seed=10 * w + i))
        for i in range(4):
            name = f"t{w}{i}.wav"
            write(root / "test" / name, utterance([word], f0=110 + 20 * i, seed=500 + 10 * w + i))
            lines.append(f"{name}\t{word}\n")
    (root / "truth.tsv").write_text("".join(lines))
    return root


def kws_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kws", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


# ---------------------------------------------------------------- the metric

def test_roc_auc_counts_order_and_ties():
    pos = np.array([True, True, False, False])
    assert roc_auc(np.array([0.9, 0.8, 0.1, 0.2]), pos) == 1.0
    assert roc_auc(np.array([0.1, 0.2, 0.9, 0.8]), pos) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), pos) == 0.5
    assert np.isnan(roc_auc(np.array([0.5, 0.5]), np.array([True, True])))


def test_nauc_is_zero_for_priors_and_one_for_a_perfect_answer():
    truth = ["a", "b", "c", "a"]
    perfect = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], float)
    assert nauc(perfect, ["a", "b", "c"], truth) == 1.0
    assert nauc(np.full((4, 3), 1 / 3), ["a", "b", "c"], truth) == 0.0
    assert mean_auc(perfect[:, ::-1], ["c", "b", "a"], truth) == 1.0     # the columns follow the classes given


def test_alc_is_the_step_area_on_the_log_time_axis():
    assert alc([0.0], [0.8], 300, 60) == pytest.approx(0.8)
    x = float(transform_time(60, 300, 60))
    assert x == pytest.approx(np.log(2) / np.log(6))
    assert alc([60.0], [0.5], 300, 60) == pytest.approx(0.5 * (1 - x))
    assert alc([60.0, 120.0], [0.5, 0.9], 300, 60) == pytest.approx(
        0.5 * (float(transform_time(120, 300, 60)) - x) + 0.9 * (1 - float(transform_time(120, 300, 60))))
    assert alc([400.0], [1.0], 300, 60) == 0.0        # after the budget: not counted
    assert alc([], [], 300, 60) == 0.0


# ---------------------------------------------------------------- the probe and the folds

def test_logistic_separates_blobs_and_keeps_the_columns_it_is_given():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(m, 0.3, (20, 4)) for m in (0, 3)])
    y = np.array(["a"] * 20 + ["b"] * 20)
    fit = Logistic.fit(x, y, classes=np.array(["a", "b", "z"]))
    assert (fit.predict(x) == y).all()
    p = fit.proba(x)
    assert p.shape == (40, 3) and np.allclose(p.sum(1), 1) and p[:, 2].max() < 0.2   # "z" never seen: unlikely


def test_folds_are_stratified():
    labels = np.array(["a"] * 6 + ["b"] * 3)
    f = folds_of(labels, 3)
    for c in "ab":
        assert sorted(np.bincount(f[labels == c], minlength=3)) == ([2, 2, 2] if c == "a" else [1, 1, 1])


# ---------------------------------------------------------------- the files

def test_training_data_from_class_folders_or_a_labels_file(task, tmp_path):
    folders = read_training(task / "train", None)
    assert len(folders.paths) == 18 and sorted(set(folders.labels)) == sorted(WORDS)
    (tmp_path / "labels.tsv").write_text("".join(f"{p.relative_to(task)}\t{lab}\n"
                                                 for p, lab in zip(folders.paths, folders.labels)))
    listed = read_training(task, tmp_path / "labels.tsv")
    assert listed.paths == folders.paths and listed.labels == folders.labels
    (tmp_path / "bad.tsv").write_text("a.wav\tx\nb.wav\n")
    with pytest.raises(UsageError, match="bad.tsv:2"):
        read_training(None, tmp_path / "bad.tsv")
    (tmp_path / "one.tsv").write_text("a.wav\tx\nb.wav\tx\n")
    with pytest.raises(UsageError, match="two classes"):
        read_training(None, tmp_path / "one.tsv")


def test_prediction_files_round_trip(tmp_path):
    p = np.array([[0.2, 0.8], [0.6, 0.4]])
    write_predictions(tmp_path / "predictions-003.tsv", ["x/a.wav", "b.wav"], ["no", "yes"], p,
                      elapsed_s="1.500", model="encoder trunk 2 (l2 0.01) + GE2E (l2 0.01)")
    r = read_predictions(tmp_path / "predictions-003.tsv")
    assert r.elapsed_s == 1.5 and r.header["model"] == "encoder trunk 2 (l2 0.01) + GE2E (l2 0.01)"
    assert r.names == ["x/a.wav", "b.wav"] and r.classes == ["no", "yes"] and np.allclose(r.proba, p)
    write_predictions(tmp_path / "predictions-010.tsv", ["b.wav"], ["no", "yes"], p[:1], elapsed_s="2")
    assert [f.name for f in prediction_files(tmp_path)] == ["predictions-003.tsv", "predictions-010.tsv"]


# ---------------------------------------------------------------- the anytime learner

def test_train_publishes_early_then_better_and_saves_what_it_publishes(task, tmp_path):
    training = read_training(task / "train", None)
    test = sorted((task / "test").glob("*.wav"))
    curve = train(training, test, [p.name for p in test], tmp_path / "model", tmp_path / "pred", budget_s=120)
    files = prediction_files(tmp_path / "pred")
    assert len(files) == len(curve) >= 2                  # the priors at once, then the first model
    scored = [cv for _, cv, _ in curve[2:]]
    assert scored == sorted(scored)                       # each later one beat the one before it on the folds
    times = [read_predictions(f).elapsed_s for f in files]
    assert times == sorted(times) and times[-1] < 120
    r = evaluate(tmp_path / "pred", task / "truth.tsv", 120)
    assert r["curve"][0]["nauc"] == 0.0                   # the class priors
    assert r["final"]["nauc"] > 0.8 and 0 < r["alc"] <= r["final"]["nauc"]
    model = ClassifierModel.load(tmp_path / "model")      # the model behind the last file
    last = read_predictions(files[-1])
    assert np.allclose(predict(model, test), last.proba, atol=1e-4)


def test_train_stops_at_its_budget_with_complete_files(task, tmp_path):
    training = read_training(task / "train", None)
    test = sorted((task / "test").glob("*.wav"))
    t0 = time.time()
    train(training, test, [p.name for p in test], tmp_path / "model", tmp_path / "pred", budget_s=2.5, start=t0)
    assert time.time() - t0 < 2.5
    for f in prediction_files(tmp_path / "pred"):
        assert sorted(read_predictions(f).names) == sorted(p.name for p in test)


def test_unreadable_clips_lose_nothing_else(task, tmp_path):
    training = read_training(task / "train", None)
    bad_train = tmp_path / "bad-train.wav"
    bad_train.write_bytes(b"RIFF not audio")
    training = type(training)(training.paths + [bad_train], training.labels + ["alpha"])
    test = sorted((task / "test").glob("*.wav")) + [bad_train]
    names = [p.name for p in test]
    train(training, test, names, tmp_path / "model", tmp_path / "pred", budget_s=120)
    last = read_predictions(prediction_files(tmp_path / "pred")[-1])
    assert last.names == names
    assert np.allclose(last.proba[-1], [7 / 19, 6 / 19, 6 / 19], atol=1e-4)   # the priors: no evidence
    assert (np.argmax(last.proba[:-1], 1) == [int(n[1]) for n in names[:-1]]).mean() > 0.8


# ---------------------------------------------------------------- the commands

@pytest.mark.e2e
def test_cli_train_predict_evaluate(task, tmp_path):
    r = kws_cli("classify", "train", "--data", str(task / "train"), "--test", str(task / "test"),
                "--model", str(tmp_path / "m"), "--budget", "120")
    assert r.returncode == 0, r.stderr
    assert prediction_files(tmp_path / "m" / "predictions")
    r = kws_cli("classify", "predict", "--model", str(tmp_path / "m"), "--data", str(task / "test"),
                "--out", str(tmp_path / "p.tsv"))
    assert r.returncode == 0, r.stderr
    assert len(read_predictions(tmp_path / "p.tsv").names) == 12
    r = kws_cli("classify", "evaluate", "--predictions", str(tmp_path / "m" / "predictions"), "--truth",
                str(task / "truth.tsv"), "--budget", "120", "--out", str(tmp_path / "e.json"),
                "--plot", str(tmp_path / "curve.png"))
    assert r.returncode == 0, r.stderr
    assert "ALC" in r.stdout and (tmp_path / "curve.png").stat().st_size > 1000
    r = kws_cli("classify", "evaluate", "--predictions", str(tmp_path / "m" / "predictions"))
    assert r.returncode == 2 and "--truth" in r.stderr
    r = kws_cli("classify", "train", "--data", str(task / "train" / "alpha"), "--budget", "10")
    assert r.returncode == 2 and "two classes" in r.stderr


@pytest.mark.e2e
def test_a_kill_leaves_the_last_whole_predictions(task, tmp_path):
    """As the AutoSpeech platform does at the budget: SIGKILL; whatever was published stays whole and scores."""
    p = subprocess.Popen([sys.executable, "-m", "kws", "classify", "train", "--data", str(task / "train"), "--test",
                          str(task / "test"), "--model", str(tmp_path / "m"), "--budget", "300"],
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pred = tmp_path / "m" / "predictions"
    deadline = time.time() + 60
    while len(prediction_files(pred)) < 2 and time.time() < deadline and p.poll() is None:
        time.sleep(0.02)
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait()
    files = prediction_files(pred)
    assert len(files) >= 2
    for f in files:
        assert len(read_predictions(f).names) == 12
    assert evaluate(pred, task / "truth.tsv", 300)["counted"] == len(files)
