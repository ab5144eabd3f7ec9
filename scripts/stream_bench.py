#!/usr/bin/env python3
"""The stream benchmark: long streams of many voices, the enrolled phrase hidden among them, scored as a listener.

    python scripts/stream_bench.py build --words ../shared/data/words --split dev --noise ../shared/data/noise \
        --out SCRATCH/sb-dev [--variant dense|quiet] [--minutes 30] [--per-speaker 2] [--seed 1] [--voices unheard]
    python scripts/stream_bench.py enroll --bench SCRATCH/sb-dev --profile profile-both --set detect.voiceprint=both
    python scripts/stream_bench.py run --bench SCRATCH/sb-dev [--jobs 2] [--set section.field=value ...] \
        [--profile profile] [--record rec.tsv] [--sensitivity balanced]
    python scripts/stream_bench.py report --bench SCRATCH/sb-dev [--out docs/stream_bench-dev-dense.json]

build: per task (one speaker and a one- or two-word phrase, drawn as make_tasks.py draws them), five
enrollment takes, a profile enrolled from them (`kws enroll`), and a stream written as FLAC with its truth:
  - isolated words by every speaker of the split, one after another: 0.1-0.8 s apart (dense) or 1-3 s
    apart (quiet), at -26 dBFS +- 5 dB;
  - one word in five by the enrolled speaker, never a word of the phrase;
  - the phrase by the enrolled speaker (its five takes not used for enrollment, in turn) about every 75 s,
    and as often the phrase said by another speaker of the same corpus;
  - a bed of the noise folder's recordings (20-60 s pieces, cross-faded) 15 dB under the words;
    the phrase, by whoever says it, at 0-20 dB over that bed.
  The dev version takes dev-split words and ../shared/data/noise; the train version (for fitting)
  train-split words and noise-train. make_tasks.py's rules hold: the split is never mixed.
  --voices unheard keeps only voices that no trained part heard, as dev's are: of a train split, the
  calibration half of the task corpora (word_corpus.split_speakers), which the encoder, GE2E's tuning and
  the cohorts never met. A fit on streams of heard voices sees their s-normed speaker scores pulled down
  by their own voices in the cohort.
enroll: every task's profile enrolled again from its takes under other settings (a voiceprint needs its
  own profile), into <task>/<--profile>.
run: every stream through scripts/eval_stream.py, one fresh process per stream, pinned to one core
  (taskset), --jobs at a time; each writes <task>/result.json (and with --record, every judged candidate
  to <task>/<--record>, what scripts/fit_stream.py fits on).
report: miss rate, false alarms per hour, other speakers accepted, latency p50/p95/p99 from the phrase's end
  and the hits decided over LATE_S late (each task's latest too),
  real-time factor on one core and peak RSS, over all tasks and per task, as JSON (and a Markdown table
  on stdout).
Everything is a deterministic function of --seed.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
WORD_DBFS = -26.0          # level of the words, speech frames' RMS
WORD_SPREAD_DB = 5.0
BED_UNDER_DB = 15.0        # the noise bed under the words
PHRASE_SNR_DB = (0.0, 20.0)
LATE_S = 1.0              # a hit decided this long after the phrase's end is counted as late (report)
PHRASE_EVERY_S = 75.0      # one positive, and one other speaker saying the phrase, per this much stream
OWN_SHARE = 0.2            # of the words: the enrolled speaker's
GAPS = {"dense": (0.1, 0.8), "quiet": (1.0, 3.0)}
FADE_S = 0.5


# --- the corpus ----------------------------------------------------------------------------------

class Words:
    """The words manifest of one split: clips by (speaker, word), loaded once."""

    def __init__(self, folder: Path, split: str):
        self.folder, self.split = folder, split
        self.clips: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.lang: dict[str, str] = {}
        self.corpus: dict[str, str] = {}
        with open(folder / "manifest.tsv", encoding="utf-8") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                if r["split"] == split:
                    self.clips[(r["speaker"], r["word"])].append(r["path"])
                    self.lang[r["word"]] = r["lang"]
                    self.corpus[r["speaker"]] = r["corpus"]
        for v in self.clips.values():
            v.sort()
        self.speakers = sorted({s for s, _ in self.clips})
        self._cache: dict[str, np.ndarray] = {}

    def words(self, spk: str) -> list[str]:
        return sorted(w for s, w in self.clips if s == spk)

    def load(self, path: str) -> np.ndarray:
        if path not in self._cache:
            y, sr = sf.read(self.folder / path, dtype="float32", always_2d=True)
            assert sr == SR, path
            self._cache[path] = y.mean(axis=1)
        return self._cache[path]

    def keep(self, speakers: set[str]) -> None:
        """Only these speakers' words from now on."""
        self.clips = defaultdict(list, {k: v for k, v in self.clips.items() if k[0] in speakers})
        self.speakers = [s for s in self.speakers if s in speakers]


def unheard(words: Words) -> set[str]:
    """The split's voices that no trained part heard. Of the train split: the calibration half of the task
    corpora (word_corpus.split_speakers; the encoder, GE2E's tuning and the cohorts heard the other half and
    Speech Commands). Every dev voice is unheard."""
    if words.split != "train":
        return set(words.speakers)
    from word_corpus import unheard_speakers
    return unheard_speakers(words.speakers, words.corpus)


def active_rms_db(y: np.ndarray) -> float:
    """RMS of the 10 ms frames within 30 dB of the loudest: the level of the speech, not of its pauses."""
    n = SR // 100
    p = np.mean(y[: len(y) // n * n].reshape(-1, n).astype(np.float64) ** 2, axis=1) + 1e-12
    db = 10 * np.log10(p)
    return float(10 * np.log10(p[db > db.max() - 30].mean()))


def speech_end(y: np.ndarray) -> float:
    """Seconds from the clip's start to the end of its last frame within 30 dB of the loudest."""
    n = SR // 100
    p = 10 * np.log10(np.mean(y[: len(y) // n * n].reshape(-1, n).astype(np.float64) ** 2, axis=1) + 1e-12)
    return float((np.flatnonzero(p > p.max() - 30)[-1] + 1) * n / SR)


def at_level(y: np.ndarray, dbfs: float) -> np.ndarray:
    return (y * 10 ** ((dbfs - active_rms_db(y)) / 20)).astype(np.float32)


def joined(rng: np.random.Generator, pieces: list[np.ndarray]) -> np.ndarray:
    """Words of a phrase one after another, 0.05-0.3 s apart (as make_tasks.py says a phrase)."""
    out = []
    for i, p in enumerate(pieces):
        if i:
            out.append(np.zeros(int(rng.uniform(0.05, 0.3) * SR), np.float32))
        out.append(p)
    return np.concatenate(out)


# --- tasks -----------------------------------------------------------------------------------------

def draw_tasks(words: Words, per_speaker: int, seed: int) -> list[dict]:
    """(speaker, phrase) per task: a word with 10 takes, or two of one language, as make_tasks.py draws them."""
    tasks = []
    for spk in words.speakers:
        rng = np.random.default_rng([seed, words.speakers.index(spk)])
        full = [w for w in words.words(spk) if len(words.clips[(spk, w)]) >= 10]
        langs = sorted({words.lang[w] for w in full})
        for k in range(per_speaker if langs else 0):
            lang = langs[k % len(langs)]
            pool = [w for w in full if words.lang[w] == lang]
            two = len(pool) >= 2 and rng.random() < 0.6
            phrase = tuple(rng.choice(pool, 2 if two else 1, replace=False).tolist())
            tasks.append({"task": f"S{len(tasks) + 1:02d}", "speaker": spk, "corpus": words.corpus[spk],
                          "phrase": " ".join(phrase), "words": list(phrase), "lang": lang})
    return tasks


class NoiseBed:
    """Pieces of the noise recordings, 20-60 s each from a random place, cross-faded, at one level."""

    def __init__(self, folder: Path, rng: np.random.Generator, dbfs: float):
        self.clips = [sf.read(p, dtype="float32", always_2d=True)[0].mean(axis=1)
                      for p in sorted(folder.glob("*.flac")) + sorted(folder.glob("*.wav"))]
        if not self.clips:
            raise SystemExit(f"{folder}: no noise recordings")
        self.rng, self.dbfs = rng, dbfs
        self.rms = [float(np.sqrt(np.mean(c.astype(np.float64) ** 2))) + 1e-9 for c in self.clips]

    def take(self, n: int) -> np.ndarray:
        out, fade = np.zeros(n, np.float32), int(FADE_S * SR)
        pos = 0
        while pos < n:
            k = int(self.rng.integers(len(self.clips)))
            c, m = self.clips[k], int(self.rng.uniform(20, 60) * SR)
            start = int(self.rng.integers(0, max(1, len(c) - 1)))
            piece = np.resize(np.roll(c, -start), m + fade) * (10 ** (self.dbfs / 20) / self.rms[k])
            ramp = np.ones(len(piece), np.float32)
            ramp[:fade] = np.linspace(0, 1, fade)
            ramp[-fade:] = np.linspace(1, 0, fade)
            seg = (piece * ramp)[: n - pos]
            out[pos:pos + len(seg)] += seg
            pos += m
        return out


def build_task(words: Words, task: dict, out: Path, variant: str, minutes: float, noise: Path, seed: int) -> dict:
    """Enrollment takes, the profile and the stream of one task; returns its summary."""
    rng = np.random.default_rng([seed, int(task["task"][1:]), 1 if variant == "dense" else 2])
    spk, phrase = task["speaker"], task["words"]
    folder = out / task["task"]
    (folder / "enroll").mkdir(parents=True, exist_ok=True)
    reps = list(zip(*[words.clips[(spk, w)] for w in phrase]))
    order = rng.permutation(len(reps))
    enroll, held = [reps[i] for i in order[:5]], [reps[i] for i in order[5:]]
    say = lambda rep: [words.load(p) for p in rep]   # noqa: E731
    takes = []
    for i, rep in enumerate(enroll, 1):   # as make_tasks.py's enrollment: silence around, a gain, no noise
        y = np.concatenate([np.zeros(int(rng.uniform(0.2, 0.6) * SR), np.float32), joined(rng, say(rep)),
                            np.zeros(int(rng.uniform(0.2, 0.6) * SR), np.float32)])
        y = y / (np.abs(y).max() + 1e-9) * 10 ** (rng.uniform(-14, -2) / 20)
        takes.append(folder / "enroll" / f"E{i}.wav")
        sf.write(takes[-1], y.astype(np.float32), SR, subtype="PCM_16")

    own = [w for w in words.words(spk) if w not in phrase]
    others_kw = [s for s in words.speakers if s != spk and words.corpus[s] == words.corpus[spk]
                 and all((s, w) in words.clips for w in phrase)]
    pool = [(s, w) for (s, w) in words.clips if s != spk]   # every other voice's words
    total = int(minutes * 60 * SR)
    n_phrase = max(1, round(minutes * 60 / PHRASE_EVERY_S))
    gap_lo, gap_hi = GAPS[variant]

    # The order of events: words, with the positives and the other speakers' phrases at random places.
    mean_event = 0.9 + (gap_lo + gap_hi) / 2
    n_words = int(minutes * 60 / mean_event)
    kinds = ["word"] * n_words
    for kind in ["positive"] * n_phrase + ["other_phrase"] * n_phrase:
        kinds.insert(int(rng.integers(len(kinds) // 20, len(kinds))), kind)
    bed_db = WORD_DBFS - BED_UNDER_DB
    bed = NoiseBed(noise, rng, bed_db)
    rows, pos, n_pos = [], int(rng.uniform(1, 3) * SR), 0
    y_out = np.zeros(total, np.float32)
    for kind in kinds:
        if kind == "positive":
            rep = held[n_pos % len(held)]
            n_pos += 1
            who, text = spk, task["phrase"]
            y = joined(rng, say(rep))
            snr = float(rng.uniform(*PHRASE_SNR_DB))
            y = at_level(y, bed_db + snr)
        elif kind == "other_phrase":
            who = others_kw[int(rng.integers(len(others_kw)))]
            text = task["phrase"]
            y = joined(rng, [words.load(words.clips[(who, w)][int(rng.integers(len(words.clips[(who, w)])))])
                             for w in phrase])
            snr = float(rng.uniform(*PHRASE_SNR_DB))
            y = at_level(y, bed_db + snr)
        else:
            if rng.random() < OWN_SHARE:
                who, text = spk, own[int(rng.integers(len(own)))]
                kind = "own_word"
            else:
                who, text = pool[int(rng.integers(len(pool)))]
            clips = words.clips[(who, text)]
            y = words.load(clips[int(rng.integers(len(clips)))])
            snr = None
            y = at_level(y, WORD_DBFS + float(rng.uniform(-WORD_SPREAD_DB, WORD_SPREAD_DB)))
        if pos + len(y) > total:
            break
        y_out[pos:pos + len(y)] += y
        rows.append({"start": round(pos / SR, 3), "end": round((pos + len(y)) / SR, 3),
                     "speech_end": round(pos / SR + speech_end(y), 3), "kind": kind, "speaker": who,
                     "text": text, "snr": "" if snr is None else round(snr, 1)})
        pos += len(y) + int(rng.uniform(gap_lo, gap_hi) * SR)
    y_out += bed.take(total)
    sf.write(folder / "stream.flac", np.clip(y_out, -1, 1), SR, subtype="PCM_16")
    with open(folder / "truth.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)

    name = "".join(c if c.isalnum() else "-" for c in task["phrase"]).strip("-")[:60] or task["task"]
    enroll_into(folder / "profile", name, takes)
    counts = {k: sum(r["kind"] == k for r in rows) for k in ("positive", "other_phrase", "own_word", "word")}
    return {**task, "variant": variant, "seconds": round(total / SR, 1), "phrase_name": name, **counts}


def build(a: argparse.Namespace) -> None:
    from kws.errors import EnrollmentError
    words = Words(Path(a.words), a.split)
    if a.voices == "unheard":
        words.keep(unheard(words))
    tasks = draw_tasks(words, a.per_speaker, a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    for t in tasks:
        try:
            summaries.append(build_task(words, t, out, a.variant, a.minutes, Path(a.noise), a.seed))
        except EnrollmentError as e:   # takes a user would be asked to record again: no task
            shutil.rmtree(out / t["task"], ignore_errors=True)
            print(f"{t['task']}: {t['speaker']} '{t['phrase']}' left out: {str(e).splitlines()[0]}", flush=True)
            continue
        print(f"{t['task']}: {t['speaker']} '{t['phrase']}' ({t['lang']}), {summaries[-1]['positive']} positives",
              flush=True)
    (out / "bench.json").write_text(json.dumps({"args": vars(a), "tasks": summaries}, indent=1, ensure_ascii=False)
                                    + "\n", encoding="utf-8")
    print(f"{len(tasks)} tasks, {sum(s['seconds'] for s in summaries) / 3600:.1f} h -> {out}")


# --- running and scoring ---------------------------------------------------------------------------

def run(a: argparse.Namespace) -> None:
    bench = Path(a.bench)
    tasks = json.loads((bench / "bench.json").read_text(encoding="utf-8"))["tasks"]
    if a.tasks:
        tasks = [t for t in tasks if t["task"] in a.tasks.split(",")]
    here = Path(__file__).resolve().parent
    cores = sorted(os.sched_getaffinity(0))

    def one(i_t: tuple[int, dict]) -> str:
        i, t = i_t
        folder = bench / t["task"]
        cmd = ["taskset", "-c", str(cores[i % len(cores)]), sys.executable, str(here / "eval_stream.py"),
               "--profile", str(folder / a.profile), "--stream", str(folder / "stream.flac"),
               "--truth", str(folder / "truth.tsv"), "--out", str(folder / a.result), "--sensitivity", a.sensitivity,
               *(["--record", str(folder / a.record)] if a.record else [])]
        for s in a.set or []:
            cmd += ["--set", s]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"{t['task']}: eval_stream failed\n{r.stderr[-3000:]}")
        return t["task"]

    with ThreadPoolExecutor(a.jobs) as ex:   # each worker's process pinned to its own core
        for i, name in enumerate(ex.map(one, enumerate(tasks)), 1):
            print(f"{name} done ({i}/{len(tasks)})", flush=True)


def enroll_into(profile: Path, name: str, takes: list[Path], settings: list[str] | None = None) -> None:
    """The phrase enrolled from takes into a profile folder under settings, replacing an earlier build."""
    from kws.app.api import Profile
    from kws.config import with_settings
    Profile.enroll(profile, name, takes, replace=(profile / name).exists(), cfg=with_settings(settings or []))


def enroll(a: argparse.Namespace) -> None:
    """Each task's phrase enrolled again from its five takes, under --set, into <task>/<--profile>."""
    bench = Path(a.bench)
    if a.profile == "profile":
        raise SystemExit("--profile profile is the bench's own profile; name another folder")
    for t in json.loads((bench / "bench.json").read_text(encoding="utf-8"))["tasks"]:
        folder = bench / t["task"]
        enroll_into(folder / a.profile, t["phrase_name"], sorted((folder / "enroll").glob("E*.wav")), a.set)
        print(f"{t['task']}: enrolled into {folder / a.profile}", flush=True)


def summarise(results: list[dict]) -> dict:
    """The benchmark's numbers over tasks' results (eval_stream.py's JSON)."""
    pos = sum(r["positives"] for r in results)
    lat = sorted(x for r in results for x in r["latencies_s"])
    miss, fa_h, other_rate, _ = pooled(results, 0.0)

    def q(p: float) -> float | None:
        return round(float(np.percentile(lat, p)), 3) if lat else None
    return {"tasks": len(results), "hours": round(sum(r["audio_s"] for r in results) / 3600, 2), "positives": pos,
            "hits": sum(r["hits"] for r in results), "miss_rate": round(float(miss), 4),
            "false_alarms": sum(r["false_alarms"] for r in results), "false_alarms_per_hour": round(float(fa_h), 3),
            "other_phrases": sum(r["other_phrases"] for r in results),
            "other_accepted": sum(r["other_accepted"] for r in results), "other_accepted_rate": round(float(other_rate), 4),
            "latency_p50_s": q(50), "latency_p95_s": q(95), "latency_p99_s": q(99),
            # A percentile hides a user whose every phrase is decided late (docs/stream_bench.md, v23): count them.
            "late_hits": sum(x > LATE_S for x in lat),
            "rtf_max": max(r["rtf"] for r in results), "rtf_mean": round(float(np.mean([r["rtf"] for r in results])), 4),
            "peak_rss_mb_max": max(r["peak_rss_mb"] for r in results),
            "false_alarm_kinds": {k: sum(r["false_alarm_kinds"].get(k, 0) for r in results)
                                  for k in sorted({k for r in results for k in r["false_alarm_kinds"]})}}


# What pooled() returns, in order: the names compare() and report --against give its differences.
POOLED = ("miss_rate", "false_alarms_per_hour", "other_accepted_rate", "loss")


def pooled(results: list[dict], per_hour: float) -> np.ndarray:
    """(miss rate, false alarms per hour, other speakers accepted, miss rate + per_hour * FA/h) over tasks."""
    pos, hits = sum(r["positives"] for r in results), sum(r["hits"] for r in results)
    hours = sum(r["audio_s"] for r in results) / 3600
    miss, fa_h = 1 - hits / max(pos, 1), sum(r["false_alarms"] for r in results) / max(hours, 1e-9)
    other = sum(r["other_accepted"] for r in results) / max(sum(r["other_phrases"] for r in results), 1)
    return np.array([miss, fa_h, other, miss + per_hour * fa_h])


def compare(a: list[dict], b: list[dict], per_hour: float, draws: int = 2000, seed: int = 0) -> dict:
    """Result set a against b on the same tasks: the pooled differences (a - b) and their 95 % interval over
    bootstrap draws of tasks (paired: a drawn task counts in both), so that a dev difference is read against
    what the choice of tasks alone would move it by."""
    by_task = {r["task"]: r for r in b}
    pairs = [(r, by_task[r["task"]]) for r in a if r["task"] in by_task]
    if len(pairs) < 2:
        raise SystemExit("fewer than two tasks in both results: nothing to compare")
    rng = np.random.default_rng(seed)
    diff = pooled([x for x, _ in pairs], per_hour) - pooled([y for _, y in pairs], per_hour)
    boot = np.array([pooled([pairs[i][0] for i in idx], per_hour) - pooled([pairs[i][1] for i in idx], per_hour)
                     for idx in rng.integers(0, len(pairs), (draws, len(pairs)))])
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    return {"tasks": len(pairs), "per_hour": per_hour, "draws": draws,
            **{n: {"diff": round(float(d), 4), "ci95": [round(float(x), 4), round(float(y), 4)]}
               for n, d, x, y in zip(POOLED, diff, lo, hi)},
            "loss_lower_share": round(float(np.mean(boot[:, 3] < 0)), 3)}


def task_results(bench: Path, result: str) -> list[dict]:
    """Each task's result file (eval_stream.py's JSON) with its task's entry in bench.json."""
    meta = json.loads((bench / "bench.json").read_text(encoding="utf-8"))
    rows = []
    for t in meta["tasks"]:
        p = bench / t["task"] / result
        if p.is_file():
            rows.append({**t, **json.loads(p.read_text(encoding="utf-8"))})
    return rows


def report(a: argparse.Namespace) -> None:
    bench = Path(a.bench)
    meta = json.loads((bench / "bench.json").read_text(encoding="utf-8"))
    rows = task_results(bench, a.result)
    out = {"bench": str(bench), "build": meta["args"], "settings": rows[0].get("settings") if rows else None,
           "all": summarise(rows),
           "per_task": [{k: r[k] for k in ("task", "speaker", "phrase", "lang", "positives", "hits", "false_alarms",
                                           "other_phrases", "other_accepted", "rtf", "peak_rss_mb")}
                        | {"latency_max_s": max(r["latencies_s"], default=None)} for r in rows]}
    if a.against:
        from fit_stream import Loss
        out["against"] = {"result": a.against, **compare(rows, task_results(bench, a.against), Loss.per_hour)}
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if a.against:
        c = out["against"]
        print(f"{a.result} - {a.against}, {c['tasks']} tasks, 95 % over task draws: " + ", ".join(
            f"{n} {c[n]['diff']:+.3f} [{c[n]['ci95'][0]:+.3f}, {c[n]['ci95'][1]:+.3f}]"
            for n in POOLED)
            + f"; loss lower in {c['loss_lower_share']:.0%} of draws")
    s = out["all"]
    print(f"| {bench.name} | {s['tasks']} | {s['hours']} | {s['miss_rate']:.3f} ({s['positives'] - s['hits']}/"
          f"{s['positives']}) | {s['false_alarms_per_hour']:.2f} ({s['false_alarms']}) | {s['other_accepted_rate']:.3f} "
          f"({s['other_accepted']}/{s['other_phrases']}) | {s['latency_p50_s']} / {s['latency_p95_s']} | "
          f"{s['rtf_max']} | {s['peak_rss_mb_max']} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--words", required=True)
    b.add_argument("--split", required=True, choices=("dev", "train"))
    b.add_argument("--noise", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--variant", default="dense", choices=tuple(GAPS))
    b.add_argument("--minutes", type=float, default=30.0)
    b.add_argument("--per-speaker", type=int, default=2)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--voices", choices=("all", "unheard"), default="all", help="unheard: only voices no trained "
                   "part heard (a train split's calibration half), as dev's")
    r = sub.add_parser("run")
    r.add_argument("--bench", required=True)
    r.add_argument("--jobs", type=int, default=2)
    r.add_argument("--tasks", default="", help="comma list of task ids (default: all)")
    r.add_argument("--set", action="append", help="section.field=value for the detector (repeatable)")
    r.add_argument("--result", default="result.json")
    r.add_argument("--sensitivity", default="balanced", help="the listener's (kws listen --sensitivity): "
                   "fewest-false-alarms, balanced, fewest-misses or a number from 0 to 1")
    r.add_argument("--profile", default="profile", help="the profile folder of each task (see enroll)")
    r.add_argument("--record", default="", help="also write every judged candidate to <task>/RECORD (fit_stream.py)")
    e = sub.add_parser("enroll")
    e.add_argument("--bench", required=True)
    e.add_argument("--profile", required=True, help="the folder name, in each task, to enroll into")
    e.add_argument("--set", action="append", help="section.field=value for the enrollment (repeatable)")
    p = sub.add_parser("report")
    p.add_argument("--bench", required=True)
    p.add_argument("--result", default="result.json")
    p.add_argument("--out", default="")
    p.add_argument("--against", default="", help="another result of the same bench: the differences, with a "
                   "bootstrap interval over tasks (the loss: miss rate + fit_stream's per-hour weight x FA/h)")
    a = ap.parse_args()
    if a.cmd == "build":
        if a.split == "train":
            from noise_rule import check_training_noise
            check_training_noise(a.noise)
        elif Path(a.noise).resolve().name != "noise":
            raise SystemExit("the dev streams take ../shared/data/noise (the noise rule)")
        build(a)
    else:
        {"run": run, "enroll": enroll, "report": report}[a.cmd](a)


if __name__ == "__main__":
    main()
