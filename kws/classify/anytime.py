"""The anytime learner of kws classify: within a time budget, publish a model and its test predictions
early, then better ones as they are found, as the AutoSpeech platform scores them (ALC, kws.classify.alc).

Order of work, each step checked against the budget:
1. the class priors as predictions (a complete file at once; NAUC 0);
2. the clips read; the cheap view (MFCC statistics) for every clip; its model published;
3. the encoder's views, then GE2E: each view's logistic regression scored by cross-validation on the
   training labels (NAUC of the out-of-fold probabilities), published whenever it beats the best so far;
4. ensembles (the best views' probabilities averaged, added greedily while the cross-validated NAUC grows);
5. the L2 grid on the best views, and the ensembles again.
Test labels are never seen: every choice is made on the training folds.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from kws.classify.alc import nauc
from kws.classify.dataset import Labelled, prediction_path, write_predictions
from kws.classify.logistic import Logistic
from kws.classify.model import ClassifierModel, Member
from kws.classify.views import GROUPS, Embedder, group_of
from kws.config import DEFAULT, Config
from kws.errors import AudioError
from kws.signal.audio import read_audio

log = logging.getLogger(__name__)


class OutOfTime(Exception):
    """The budget (less its margin) has passed."""


@dataclass(frozen=True)
class Clock:
    start: float          # epoch seconds the task started at (the platform's clock, not this process's)
    budget_s: float
    margin_s: float

    def elapsed(self) -> float:
        return time.time() - self.start

    def check(self) -> None:
        if self.elapsed() > self.budget_s - self.margin_s:
            raise OutOfTime


def folds_of(labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """A fold number per row, each class dealt round the folds in a shuffled order (stratified)."""
    rng, out = np.random.default_rng(seed), np.zeros(len(labels), int)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        out[rng.permutation(idx)] = np.arange(len(idx)) % k
    return out


@dataclass
class Search:
    """The state of one training run: the data's views, each candidate's out-of-fold probabilities, the best model."""
    labels: np.ndarray
    classes: np.ndarray
    folds: np.ndarray
    clock: Clock
    cfg: Config
    train_x: dict[str, np.ndarray] = field(default_factory=dict)
    oof: dict[tuple[str, float], np.ndarray] = field(default_factory=dict)     # (view, l2) -> (N, K)
    cv: dict[tuple[str, float], float] = field(default_factory=dict)
    best: ClassifierModel | None = None

    def _fit(self, view: str, l2: float, rows: np.ndarray | slice = slice(None)) -> Logistic:
        return Logistic.fit(self.train_x[view][rows], self.labels[rows], self.classes, l2, self.cfg.classify.max_iter,
                            each=self.clock.check)

    def cross_validate(self, view: str, l2: float) -> float:
        """NAUC of the view's out-of-fold probabilities (kept for the ensembles)."""
        oof = np.zeros((len(self.labels), len(self.classes)))
        for f in range(self.cfg.classify.folds):
            test = self.folds == f
            if test.any() and (~test).any():
                oof[test] = self._fit(view, l2, ~test).proba(self.train_x[view][test])
        self.oof[view, l2], self.cv[view, l2] = oof, nauc(oof, list(self.classes), list(self.labels))
        log.info("%.1f s: %s, l2 %g: cross-validated NAUC %.4f", self.clock.elapsed(), view, l2, self.cv[view, l2])
        return self.cv[view, l2]

    def model(self, members: list[tuple[str, float]], cv: float) -> ClassifierModel:
        return ClassifierModel(list(self.classes), tuple(Member(v, l2, self._fit(v, l2)) for v, l2 in members), cv)

    def best_ensemble(self) -> tuple[list[tuple[str, float]], float]:
        """Greedy: the best candidate, then while it helps the next best of another view, up to ensemble_max."""
        ranked = sorted(self.cv, key=self.cv.get, reverse=True)
        chosen, score = [ranked[0]], self.cv[ranked[0]]
        for cand in ranked[1:]:
            if len(chosen) >= self.cfg.classify.ensemble_max:
                break
            if cand[0] in {v for v, _ in chosen}:
                continue
            trial = nauc(np.mean([self.oof[c] for c in chosen + [cand]], axis=0), list(self.classes), list(self.labels))
            if trial > score + 1e-4:
                chosen, score = chosen + [cand], trial
        return chosen, score


class Publisher:
    """Writes each new best model (MODEL_DIR/model.npz) and its test predictions (predictions-NNN.tsv)."""

    def __init__(self, model_dir: Path, predictions_dir: Path | None, test_names: list[str], clock: Clock):
        self.model_dir, self.dir, self.names, self.clock = model_dir, predictions_dir, test_names, clock
        self.index = 0
        self.curve: list[tuple[float, float, str]] = []    # (elapsed, cv NAUC, model) of every publication
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)

    def publish(self, classes: list[str], proba: np.ndarray | None, description: str, cv: float,
                model: ClassifierModel | None = None) -> None:
        if model is not None:
            model.save(self.model_dir)
        elapsed = self.clock.elapsed()
        if self.dir is not None and proba is not None:
            write_predictions(prediction_path(self.dir, self.index), self.names, classes, proba,
                              elapsed_s=f"{elapsed:.3f}", cv_nauc=f"{cv:.4f}", model=description)
        self.curve.append((elapsed, cv, description))
        log.info("%.1f s: published %d: %s (cross-validated NAUC %.4f)", elapsed, self.index, description, cv)
        self.index += 1


def _read(paths: list[Path], cfg: Config, clock: Clock) -> list[np.ndarray | None]:
    audio = replace(cfg.audio, max_seconds=cfg.classify.max_clip_s)
    out = []
    for p in paths:
        clock.check()
        try:
            out.append(read_audio(p, audio))
        except (AudioError, OSError) as e:
            log.warning("%s: skipped (%s)", p, e)
            out.append(None)
    return out


def train(training: Labelled, test_paths: list[Path], test_names: list[str], model_dir: str | Path,
          predictions_dir: str | Path | None, budget_s: float, start: float | None = None,
          cfg: Config = DEFAULT) -> list[tuple[float, float, str]]:
    """Search within the budget; returns what was published: (elapsed s, cross-validated NAUC, model)."""
    clock = Clock(time.time() if start is None else start, budget_s, cfg.classify.margin_s)
    classes = np.array(sorted(set(training.labels)))
    prior = np.array([training.labels.count(c) for c in classes], float) / len(training.labels)
    pub = Publisher(Path(model_dir), Path(predictions_dir) if predictions_dir else None, test_names, clock)
    pub.publish(list(classes), np.tile(prior, (len(test_names), 1)), "class priors", 0.0)
    try:
        _search(training, test_paths, classes, prior, pub, clock, cfg)
    except OutOfTime:
        log.info("%.1f s: the budget (%g s less a %g s margin) is reached; the last published model stands",
                 clock.elapsed(), budget_s, cfg.classify.margin_s)
    return pub.curve


def _search(training: Labelled, test_paths: list[Path], classes: np.ndarray, prior: np.ndarray, pub: Publisher,
            clock: Clock, cfg: Config) -> None:
    wavs = _read(training.paths, cfg, clock)
    keep = [i for i, y in enumerate(wavs) if y is not None]
    labels = np.array([training.labels[i] for i in keep])
    if len(set(labels)) < 2:
        raise AudioError("fewer than two classes have a readable training clip")
    wavs = [wavs[i] for i in keep]
    test_wavs = _read(test_paths, cfg, clock)
    readable = [i for i, y in enumerate(test_wavs) if y is not None]
    search = Search(labels, classes, folds_of(labels, cfg.classify.folds), clock, cfg)
    test_x: dict[str, np.ndarray] = {}
    embedder = Embedder(cfg)

    def publish(members: list[tuple[str, float]], cv: float) -> None:
        model = search.model(members, cv)
        proba = np.tile(prior, (len(test_wavs), 1))
        if readable:
            proba[readable] = model.proba({v: test_x[v] for v in model.views})
        search.best = model
        pub.publish(list(classes), proba, model.describe(), cv, model)

    l2 = cfg.classify.l2
    for group in GROUPS:
        search.train_x.update(embedder.embed(wavs, (group,), each=clock.check))
        test_x.update(embedder.embed([test_wavs[i] for i in readable], (group,), each=clock.check))
        for view in GROUPS[group]:
            if search.best is None:       # the first model goes out before its cross-validation: early beats sure
                publish([(view, l2)], float("nan"))
            score = search.cross_validate(view, l2)
            if np.isnan(search.best.cv_nauc):       # that first model, now scored
                search.best = replace(search.best, cv_nauc=score)
            elif score > search.best.cv_nauc + 1e-4:
                publish([(view, l2)], score)
        members, score = search.best_ensemble()
        if score > search.best.cv_nauc + 1e-4:
            publish(members, score)
    # every candidate so far has the default L2, so these are distinct views, best first
    top = [v for v, _ in sorted(search.cv, key=search.cv.get, reverse=True)[:cfg.classify.ensemble_max]]
    for view in top:
        for other in cfg.classify.l2_grid:
            score = search.cross_validate(view, other)
            if score > search.best.cv_nauc + 1e-4:
                publish([(view, other)], score)
        members, score = search.best_ensemble()
        if score > search.best.cv_nauc + 1e-4:
            publish(members, score)
    log.info("%.1f s: search complete", clock.elapsed())


def predict(model: ClassifierModel, paths: list[Path], cfg: Config = DEFAULT) -> np.ndarray:
    """(N, K) probabilities of clips under a saved model; an unreadable clip gets uniform ones."""
    clock = Clock(time.time(), float("inf"), 0.0)
    wavs = _read(paths, cfg, clock)
    proba = np.full((len(paths), len(model.classes)), 1.0 / len(model.classes))
    readable = [i for i, y in enumerate(wavs) if y is not None]
    if readable:
        groups = tuple(dict.fromkeys(group_of(v) for v in model.views))
        x = Embedder(cfg).embed([wavs[i] for i in readable], groups)
        proba[readable] = model.proba(x)
    return proba
