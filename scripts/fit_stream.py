#!/usr/bin/env python3
"""Fit the listener's judge on train-split streams: pretrained/calibration_stream_<...>.json.

    python scripts/stream_bench.py build --split train --noise ../shared/data/noise-train --out SCRATCH/sb-train ...
    python scripts/eval_stream.py --profile T/profile --stream T/stream.flac --truth T/truth.tsv \
        --record T/rec.tsv --set stream.spot_min_z=-1          # for every task T of the train bench
    python scripts/fit_stream.py --bench SCRATCH/sb-train [--bench SCRATCH/sb-train-2 ...] --record rec.tsv \
        [--cv 4] [--out pretrained/...]

Each judged candidate of the recordings is a row: its clip scores (detect.score_and_locate on its span),
its spot score, and what lies under it. A candidate on a positive is a positive. Candidates below
--min-z are dropped (the spotter would not have made them), the rest are replayed in stream order
through recent.RecentScores for their @run/@runtop columns, and a logistic fusion is fitted on them;
its threshold minimises the mean over streams of
    miss rate + --per-other * other speakers' phrases accepted + --per-hour * false alarms per hour
(0.1: half a false alarm an hour weighs as much as 5 % misses, the two targets of docs/stream_bench.md;
--per-other 1: another speaker saying the phrase and accepted weighs as much as the phrase missed; default 0).
--cv K reports that loss for held-out folds of streams, to choose between column sets; never fit on dev.
--breakdown FILE --judge J writes where J's loss on these streams comes from (breakdown(): per-stream thresholds,
an oracle for each kind of negative, the negatives accepted by kind at thresholds around J's) and fits nothing.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from kws.config import DEFAULT, FRONTENDS, StreamConfig
from kws.scoring.calibrate import Calibration, calibration_name
from kws.scoring.detect import WORD_NAMES, deferred_groups
from kws.scoring.recent import RUN_SUFFIX, RUNTOP_SUFFIX, RecentPrior, RecentScores, recent_bases, recent_columns
from kws.training.fitting import Standardised, fit_logistic, fit_stream_loss
from word_corpus import Words, unheard_speakers

log = logging.getLogger("fit_stream")


@dataclass(frozen=True)
class Streams:
    """What the loss counts per stream: its hours, its positives and its other speakers' phrases; and whose
    voice it enrolled (cross_validate keeps a speaker's streams in one fold)."""
    hours: dict[str, float]
    positives: dict[str, int]
    others: dict[str, int]
    speakers: dict[str, str] = field(default_factory=dict)

    def only(self, tasks: set[str]) -> "Streams":
        return Streams(*({t: v for t, v in d.items() if t in tasks}
                         for d in (self.hours, self.positives, self.others, self.speakers)))


@dataclass(frozen=True)
class Loss:
    """miss rate + per_other * other speakers' phrases accepted + per_hour * false alarms per hour."""
    per_hour: float = 0.1
    per_other: float = 0.0
    refractory: float = StreamConfig.refractory_s   # accepted candidates this close are one false alarm


def read_bench(benches: list[Path], record: str, speakers: set[str] | None = None) -> tuple[list[dict], Streams]:
    """(candidate rows in stream order, the streams) of train benches; a stream is named <bench>/<task>.
    speakers: only the streams whose enrolled speaker is one of these (None: every stream)."""
    named = [b.name for b in benches]
    if len(set(named)) < len(named):
        raise SystemExit(f"benches {named} repeat a folder name; give each bench once, each under its own name")
    rows, streams = [], Streams({}, {}, {})
    for bench in benches:
        meta = json.loads((bench / "bench.json").read_text(encoding="utf-8"))
        if meta["args"].get("split") != "train":
            raise SystemExit(f"{bench} is a {meta['args'].get('split')}-split bench; fit on train-split streams only")
        for t in meta["tasks"]:
            name, path = f"{bench.name}/{t['task']}", bench / t["task"] / record
            if speakers is not None and t["speaker"] not in speakers:
                continue
            if not path.exists():
                log.warning("%s: no %s, task left out", name, record)
                continue
            with open(path, encoding="utf-8") as f:
                rows += [{**r, "task": name} for r in csv.DictReader(f, delimiter="\t")]
            streams.hours[name], streams.positives[name] = t["seconds"] / 3600, t["positive"]
            streams.others[name] = t.get("other_phrase", 0)
            streams.speakers[name] = t["speaker"]
    return rows, streams


def columns(rows: list[dict], names: tuple[str, ...], prior: RecentPrior) -> np.ndarray:
    """The rows' values of names, @run columns replayed stream by stream, phrase by phrase, in order."""
    read = {n for n in names if not n.endswith((RUN_SUFFIX, RUNTOP_SUFFIX))} | set(recent_bases(names))
    recent: dict[tuple[str, str], RecentScores] = {}
    out = []
    for r in rows:
        v = {n: float(r[n]) if r.get(n, "") != "" else np.nan for n in read}
        rs = recent.setdefault((r["task"], r["phrase"]), RecentScores(names, prior))
        out.append([{**v, **rs.push(v)}[n] for n in names])
    return np.array(out, np.float64)


def stream_loss(fused: np.ndarray, rows: list[dict], streams: Streams, thresholds: np.ndarray,
                loss: Loss) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(loss, miss rate, false alarms per hour, other speakers accepted) at each threshold, each a mean over
    streams: a positive is hit when a candidate on it is accepted; accepted candidates elsewhere are false
    alarms, one per refractory period; another speaker's phrase is accepted when a candidate on it is."""
    task = np.array([r["task"] for r in rows])
    end = np.array([float(r["end_s"]) for r in rows])
    on = np.array([r["kind"] == "positive" for r in rows])
    other = np.array([r["kind"] == "other_phrase" for r in rows])
    truth = np.array([f'{r["task"]}/{r["truth_start"]}' for r in rows])
    miss, fa_h, taken = np.zeros(len(thresholds)), np.zeros(len(thresholds)), np.zeros(len(thresholds))
    for t in streams.hours:
        m = task == t
        f, e, o, tr, ot = fused[m], end[m], on[m], truth[m], other[m]
        acc = f[None, :] > thresholds[:, None]
        hits = np.array([len(set(tr[o & a])) for a in acc])
        taken += np.array([len(set(tr[ot & a])) for a in acc]) / max(streams.others.get(t, 0), 1)
        fas = np.zeros(len(thresholds))
        order = np.argsort(e[~o])
        for k, a in enumerate(acc[:, ~o][:, order]):
            last, n = -np.inf, 0
            for x in e[~o][order][a]:
                if x - last > loss.refractory:
                    n, last = n + 1, x
            fas[k] = n
        miss += 1 - hits / max(streams.positives[t], 1)
        fa_h += fas / streams.hours[t]
    n = len(streams.hours)
    miss, fa_h, taken = miss / n, fa_h / n, taken / n
    return miss + loss.per_other * taken + loss.per_hour * fa_h, miss, fa_h, taken


def vetoed(rows: list[dict], veto_min: float | None) -> np.ndarray:
    """Which rows the listener's speaker veto drops whatever the judge says (their `veto` column, from
    fit_veto.py --write-record, under veto_min; None: no veto)."""
    if veto_min is None:
        return np.zeros(len(rows), bool)
    return np.array([float(r.get("veto") or "inf") < veto_min for r in rows])


def fit(rows: list[dict], names: tuple[str, ...], streams: Streams, loss: Loss, window: int, weight: float,
        l2: float, objective: str = "stream", tau: float = 1.0, veto_min: float | None = None) -> tuple[Calibration, float]:
    """The calibration of candidate rows, and its train loss; with veto_min, fitted for a listener whose
    speaker veto drops the rows under it (their @run columns still see them, as the listener's do)."""
    bases = recent_bases(names)
    prior = RecentPrior.of({b: np.array([float(r[b]) for r in rows]) for b in bases}, window, weight) if bases \
        else RecentPrior(window, weight)
    x = columns(rows, names, prior)
    y = np.array([r["kind"] == "positive" for r in rows], float)
    ok = np.isfinite(x).all(axis=1) & ~vetoed(rows, veto_min)
    s = Standardised.of(x, ok)
    z = s.z
    w, b = fit_logistic(z[ok], y[ok], l2)
    threshold, value = best_threshold(np.where(ok, z @ w + b, -np.inf), rows, streams, loss)
    if objective == "stream":
        w2, b2 = refine(z[ok], [r for r, k in zip(rows, ok) if k], w, b - threshold, streams, loss, tau)
        threshold2, value2 = best_threshold(np.where(ok, z @ w2 + b2, -np.inf), rows, streams, loss)
        if value2 <= value:
            w, b, threshold, value = w2, b2, threshold2, value2
    cal = Calibration(names, tuple(s.mean.round(6)), tuple(s.std.round(6)), tuple(w.round(6)), round(b, 6),
                      round(threshold, 6), lo=tuple(s.lo.round(6)), hi=tuple(s.hi.round(6)), recent=asdict(prior))
    scored = np.isfinite(x).all(axis=1)    # vetoed rows too: the judge scores them before the veto
    return with_caps(cal, {n: x[scored, k] for k, n in enumerate(names)}), value


def with_caps(cal: Calibration, x: dict[str, np.ndarray]) -> Calibration:
    """The calibration with each group the listener may make later (detect.deferred_groups) capped at the most its
    weighed sum reached on the training rows x: no training row's score changes, and the listener's bound on a
    part not yet made tightens to what training saw."""
    fe = next((f for f in FRONTENDS if any(n.startswith(f"{f}_kw_") for n in cal.names)), None)
    word = any(n in WORD_NAMES for n in cal.names)
    groups = [tuple(n for n in g if n in cal.names) for g in deferred_groups(fe, word)]
    groups = [g for g in groups if g]
    # rounded up, so that a training row's sum never exceeds its cap after rounding
    caps = np.ceil(cal.group_sums(x, groups).max(axis=0) * 1e6) / 1e6 if groups else []
    return replace(cal, caps=tuple((g, float(c)) for g, c in zip(groups, caps)))


def best_threshold(fused: np.ndarray, rows: list[dict], streams: Streams, loss: Loss) -> tuple[float, float]:
    """The threshold of least stream loss (the middle of its best plateau), and that loss."""
    ok = np.isfinite(fused)
    grid = np.unique(np.quantile(fused[ok & (fused > np.quantile(fused[ok], 0.5))], np.linspace(0, 1, 301)))
    value = stream_loss(fused, rows, streams, grid, loss)[0]
    best = np.flatnonzero(value <= value.min() + 1e-9)
    return float((grid[best[0]] + grid[best[-1]]) / 2), float(value[best[0]])


def refine(z: np.ndarray, rows: list[dict], w: np.ndarray, b: float, streams: Streams, loss: Loss,
           tau: float) -> tuple[np.ndarray, float]:
    """The fusion refined on the smoothed stream loss (fitting.fit_stream_loss)."""
    keys = [f'{r["task"]}/{r["truth_start"]}' if r["kind"] == "positive" else "" for r in rows]
    index = {k: i for i, k in enumerate(dict.fromkeys(k for k in keys if k))}
    group = np.array([index.get(k, -1) for k in keys])
    n = len(streams.hours)
    w_miss = np.array([1 / max(streams.positives[k.rsplit("/", 1)[0]], 1) / n for k in index])
    # Another speaker's phrase is weighed, candidate by candidate, as a share of its stream's other speakers.
    w_fa = np.array([0.0 if g >= 0 else (loss.per_hour / streams.hours[r["task"]]
                                         + (loss.per_other / max(streams.others[r["task"]], 1)
                                            if r["kind"] == "other_phrase" else 0.0)) / n
                     for r, g in zip(rows, group)])
    return fit_stream_loss(z, group, w_miss, w_fa, w, b, tau=tau)


def apply(cal: Calibration, rows: list[dict]) -> np.ndarray:
    """Fused scores of rows under a fitted calibration, replayed as the listener would (-inf: not scored)."""
    x = columns(rows, cal.names, RecentPrior(**cal.recent))
    fused = cal.fuse({n: x[:, k] for k, n in enumerate(cal.names)})
    return np.where(np.isfinite(fused), fused, -np.inf)


def judge_loss(cal: Calibration, rows: list[dict], streams: Streams, loss: Loss) -> tuple[float, float, float, float]:
    """(loss, miss rate, false alarms per hour, other speakers accepted) of a fitted judge on the candidates,
    replayed from their columns: the record's `fused` is whichever judge the recording run used."""
    return tuple(float(g[0]) for g in stream_loss(apply(cal, rows), rows, streams, np.array([cal.threshold]), loss))


# The kinds of candidate a train bench's truth gives (stream_bench.py): the phrase, and the negatives.
NEGATIVE_KINDS = ("word", "own_word", "other_phrase", "pause")


def breakdown(fused: np.ndarray, rows: list[dict], streams: Streams, loss: Loss, threshold: float,
              offsets: tuple[float, ...] = (-8, -6, -4, -3, -2, -1, 0, 1, 2)) -> dict:
    """Where a judge's stream loss comes from, on candidates it scored (fused):
    - at_threshold: (loss, miss rate, FA/h, other speakers accepted) at its own threshold;
    - best: the same at the threshold of least loss on these candidates (in sample when they trained it);
    - per_stream: the mean of each stream's least loss at its own best threshold, a bound on what any
      normalisation of scores stream by stream (running statistics, a prior per profile) could gain;
    - without_<kind>: the least loss with that kind of negative never accepted, what an oracle for it would gain;
    - sweep: at threshold + each offset, the miss rate, FA/h and the negatives accepted by kind (one per truth
      item: several candidates on one word count once)."""
    kind = np.array([r["kind"] for r in rows])
    item = np.array([f'{r["task"]}/{r["kind"]}/{r["truth_start"] or r["start_s"]}' for r in rows])

    def at(f: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """(len(thresholds), 4): loss, miss rate, FA/h and other speakers accepted at each threshold."""
        return np.round(np.stack(stream_loss(f, rows, streams, thresholds, loss), axis=1), 4)

    # One grid for every variant, so that an oracle is never judged on coarser thresholds than the judge
    # (best_threshold's grid follows the scores it is given); just under each point, so a score on it is taken.
    ok = np.isfinite(fused)
    grid = np.unique(np.quantile(fused[ok], np.linspace(0, 1, 401))) - 1e-9

    def least(f: np.ndarray) -> list[float]:
        got = at(f, grid)
        i = int(np.argmin(got[:, 0]))
        return [round(float(grid[i]), 4), *map(float, got[i])]

    out: dict = {"candidates": len(rows), "streams": len(streams.hours), "threshold": round(threshold, 4),
                 "at_threshold": [float(v) for v in at(fused, np.array([threshold]))[0]], "best": least(fused)}
    tasks = np.array([r["task"] for r in rows])
    per = []
    for t in streams.hours:
        m = tasks == t
        sub = [r for r, k in zip(rows, m) if k]
        per.append(float(stream_loss(fused[m], sub, streams.only({t}), grid, loss)[0].min()))
    out["per_stream"] = round(float(np.mean(per)), 4)
    for k in NEGATIVE_KINDS:
        out[f"without_{k}"] = least(np.where(kind == k, -np.inf, fused))
    out["sweep"] = []
    for d, got in zip(offsets, at(fused, threshold + np.array(offsets, float))):
        acc = fused > threshold + d
        by_kind = {k: len(set(item[acc & (kind == k)])) for k in NEGATIVE_KINDS}
        out["sweep"].append({"offset": d, **dict(zip(("loss", "miss", "fa_h", "other"), map(float, got))),
                             "accepted": by_kind})
    return out


def cross_validate(rows: list[dict], names: tuple[str, ...], streams: Streams, loss: Loss, k: int, seed: int,
                   settings: dict) -> tuple[float, float, float, float]:
    """(loss, miss rate, FA/h, other speakers accepted) of judges fitted on k-1 folds of streams and judged on
    the held-out fold, over the k folds (each fold weighed by its streams); seed draws the folds; settings: fit's
    keyword arguments. One draw can mislead: judges a few hundredths apart on one draw swap places on another
    (docs/stream_bench.md, v14). The folds are drawn by enrolled speaker: the benches enroll a speaker in up to
    three streams, and a judge that has met the voice or the phrase flatters what knows them (v27)."""
    tasks = np.array(sorted(streams.hours))
    voice = [streams.speakers.get(t, t) for t in tasks]     # a stream of no known speaker is its own
    voices = sorted(set(voice))
    of = dict(zip(voices, np.random.default_rng(seed).permutation(len(voices)) % k))
    fold = np.array([of[v] for v in voice])
    held = []   # (loss, miss, false alarms / h, other speakers accepted) of each fold, times its streams
    for f in range(k):
        train = set(tasks[fold != f])
        cal, _ = fit([r for r in rows if r["task"] in train], names, streams.only(train), loss, **settings)
        test, tested = [r for r in rows if r["task"] not in train], streams.only(set(tasks) - train)
        fused = np.where(vetoed(test, settings["veto_min"]), -np.inf, apply(cal, test))
        got = stream_loss(fused, test, tested, np.array([cal.threshold]), loss)
        held.append([float(g[0]) * len(tested.hours) for g in got])
    return tuple(float(v) for v in np.sum(held, axis=0) / len(tasks))


def clip_baseline(rows: list[dict], streams: Streams, loss: Loss) -> tuple[float, float, float, float]:
    """judge_loss of the platform's clip calibration."""
    return judge_loss(Calibration.for_config(DEFAULT), rows, streams, loss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", required=True, type=Path, action="append", help="a train-split stream bench "
                    "(scripts/stream_bench.py build); repeat it to fit on several")
    ap.add_argument("--speakers-half", choices=("all", "calibration"), default="all", help="calibration: only streams "
                    "whose enrolled speaker no trained part heard (word_corpus.unheard_speakers; needs --words)")
    ap.add_argument("--words", type=Path, help="the words corpus the benches were built from (--speakers-half)")
    ap.add_argument("--record", default="rec.tsv", help="each task's candidate record (eval_stream.py --record)")
    plain = Calibration.for_config(DEFAULT).names
    ap.add_argument("--columns", default=",".join((*plain, "spot")), help="score columns to fuse (default: the plain "
                    "calibration's and the spot score)")
    ap.add_argument("--recent", default="", help="base columns whose @run/@runtop columns are fused too (kws.scoring.recent)")
    ap.add_argument("--window", type=int, default=RecentPrior.window)
    ap.add_argument("--weight", type=float, default=RecentPrior.weight)
    ap.add_argument("--min-z", type=float, default=StreamConfig.spot_min_z, help="drop candidates the spotter would not "
                    "make at this StreamConfig.spot_min_z (the record must have been made at or below it)")
    ap.add_argument("--per-hour", type=float, default=Loss.per_hour, help="loss weight of one false alarm per hour")
    ap.add_argument("--per-other", type=float, default=Loss.per_other, help="loss weight of the share of other speakers' phrases "
                    "accepted (0: they count only as false alarms)")
    ap.add_argument("--l2", type=float, default=1e-2)
    ap.add_argument("--objective", choices=("stream", "logistic"), default="stream", help="stream: the logistic fit "
                    "refined on the smoothed stream loss, kept when its train loss is no worse")
    ap.add_argument("--tau", type=float, default=1.0, help="sigmoid width of the stream loss, in fused-score units")
    ap.add_argument("--veto-min", type=float, default=None, help="fit for a listener with the speaker veto: rows "
                    "whose `veto` column (fit_veto.py --write-record) is under this are never accepted")
    ap.add_argument("--cv", type=int, default=0, help="report held-out loss over this many folds of streams")
    ap.add_argument("--seed", type=lambda v: [int(x) for x in v.split(",")], default=[1], help="which streams go in "
                    "which fold (--cv); a comma list runs one cross-validation per draw and reports their mean too")
    ap.add_argument("--baseline", action="store_true", help="also report the clip calibration's loss on the candidates")
    ap.add_argument("--judge", type=Path, action="append", default=[], help="also report this fitted stream judge's "
                    "loss on the candidates (e.g. the committed one, on another bench)")
    ap.add_argument("--breakdown", default="", help="write where each --judge's loss comes from (fit_stream.breakdown) "
                    "to this JSON and stop: no fit")
    ap.add_argument("--out", default="", help=f"write the calibration (the listener loads pretrained/"
                    f"{calibration_name(DEFAULT, stream=True)})")
    a = ap.parse_args()
    if a.breakdown and not a.judge:
        raise SystemExit("--breakdown needs --judge (the judge whose loss is broken down)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    speakers = None
    if a.speakers_half == "calibration":
        if not a.words:
            raise SystemExit("--speakers-half calibration needs --words")
        train = Words(a.words, "train")
        speakers = unheard_speakers(train.speakers, train.corpus)
    rows, streams = read_bench(a.bench, a.record, speakers)
    if not streams.hours:
        raise SystemExit("no stream left to fit on")
    rows = [r for r in rows if float(r["spot"]) >= a.min_z]
    names = (*a.columns.split(","), *(c for b in a.recent.split(",") if b for c in recent_columns(b)))
    loss = Loss(a.per_hour, a.per_other)
    settings = dict(window=a.window, weight=a.weight, l2=a.l2, objective=a.objective, tau=a.tau, veto_min=a.veto_min)
    if a.cv:
        draws = [cross_validate(rows, names, streams, loss, a.cv, seed, settings) for seed in a.seed]
        for seed, (value, miss, fa_h, taken) in zip(a.seed, draws):
            log.info("cv %d folds, seed %d: held-out loss %.4f: miss rate %.3f, %.2f false alarms/h, other speakers "
                     "accepted %.3f (%d candidates/h)", a.cv, seed, value, miss, fa_h, taken,
                     len(rows) / sum(streams.hours.values()))
        if len(draws) > 1:
            log.info("cv mean over %d fold draws: held-out loss %.4f (draws %s)", len(draws),
                     float(np.mean([d[0] for d in draws])), " ".join(f"{d[0]:.4f}" for d in draws))
    if a.baseline:
        got = clip_baseline(rows, streams, loss)
        log.info("the clip calibration on these candidates: loss %.4f: miss rate %.3f, %.2f false alarms/h, "
                 "other speakers accepted %.3f", *got)
    for path in a.judge:
        log.info("%s on these candidates: loss %.4f: miss rate %.3f, %.2f false alarms/h, other speakers accepted "
                 "%.3f", path, *judge_loss(Calibration.load(path), rows, streams, loss))
    if a.breakdown:
        judges = {str(p): Calibration.load(p) for p in a.judge}
        got = {p: breakdown(apply(cal, rows), rows, streams, loss, cal.threshold) for p, cal in judges.items()}
        Path(a.breakdown).write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "judges": got}, indent=1),
                                     encoding="utf-8")
        log.info("wrote %s", a.breakdown)
        return
    cal, value = fit(rows, names, streams, loss, **settings)
    log.info("train loss %.4f, %d candidates in %d streams, threshold %.3f, weights %s", value, len(rows),
             len(streams.hours), cal.threshold, dict(zip(cal.names, np.round(cal.weights, 2))))
    if a.out:
        cal = Calibration(**{**cal.__dict__, "provenance": {"command": " ".join(["python", *sys.argv]),
                                                            "streams": len(streams.hours), "candidates": len(rows),
                                                            "speakers_half": a.speakers_half,
                                                            "train_loss": round(value, 4),
                                                            "spot_min_z": a.min_z, "per_hour": a.per_hour,
                                                            "per_other": a.per_other,
                                                            **({"veto_min": a.veto_min} if a.veto_min is not None else {})}})
        cal.save(a.out)
        log.info("wrote %s", a.out)


if __name__ == "__main__":
    main()
