#!/usr/bin/env python3
"""kws classify under the AutoSpeech protocol: five tasks from the shared data, each under budgets of 60 s
and 300 s, the process killed at its budget as the platform kills it; ALC, final AUC, learning curves.

    python scripts/classify_bench.py --words ../shared/data/words --noise ../shared/data/noise-train \
        --work SCRATCH/classify-bench --budgets 60,300 --jobs 2 --out docs/classify.json --plots docs

Tasks (seeded; speakers kept apart between train and test wherever the task allows):
- speaker ID among 10: the 10 dev speakers, odd takes to train, even takes to test (40 / 20 per speaker);
- speaker ID among 30: those 10 and 20 train-split speakers (the encoder saw those 20 in training), 30 / 15;
- language ID (zh / en / ar): train-split speakers to train (200 per language), dev speakers to test (100);
- word ID (the 20 dsp20 words): train-split speakers to train (30 per word), dev speakers to test (15);
- noise type (the 7 `noise-train` recordings, never `noise/`): train-split words mixed at 0-20 dB with the
  first half of each recording to train (60 per type), dev words with the second half to test (30).
Training clips go in as a labels file (the first four) or a folder per class (noise type); test clips are
written as c0001.wav ... with the answer key beside the folder, never in it.

The runner plays the platform: it starts `kws classify train` with --start set to its own clock, kills it
(SIGKILL) at the budget if it is still running, and scores every prediction file written by then with
`kws classify evaluate`'s code. Two tasks run at once, each pinned to one core (taskset) with one BLAS thread.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from augment import load_noise_named, mix_at_snr, noise_segment
from kws.app.classify import draw_curve, evaluate
from kws.config import SAMPLE_RATE
from word_corpus import Words

log = logging.getLogger("classify_bench")
TASKS = ("speaker-10", "speaker-30", "language", "word", "noise-type")


def _sample(rng: np.random.Generator, rows: list[dict], n: int) -> list[dict]:
    return [rows[i] for i in sorted(rng.choice(len(rows), min(n, len(rows)), replace=False))]


def _by(rows: list[dict], key: str) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return out


def split_tasks(train: Words, dev: Words, rng: np.random.Generator) -> dict[str, tuple[list, list]]:
    """{task: (train [(row, label)], test [(row, label)])} for the four word tasks."""
    tasks = {}
    dev_spk = _by(dev.rows, "speaker")
    train_spk = {s: r for s, r in _by(train.rows, "speaker").items() if len(r) >= 45}   # dsp20 and asc (many takes)
    extra = [sorted(train_spk)[i] for i in sorted(rng.choice(len(train_spk), 20, replace=False))]
    for name, speakers, n_tr, n_te in (("speaker-10", {s: dev_spk[s] for s in dev_spk}, 40, 20),
                                       ("speaker-30", {**{s: dev_spk[s] for s in dev_spk},
                                                       **{s: train_spk[s] for s in extra}}, 30, 15)):
        tr, te = [], []
        for s, rows in sorted(speakers.items()):
            tr += [(r, s) for r in _sample(rng, [r for r in rows if int(r["rep"]) % 2], n_tr)]
            te += [(r, s) for r in _sample(rng, [r for r in rows if not int(r["rep"]) % 2], n_te)]
        tasks[name] = (tr, te)
    tr, te = [], []
    for lang in ("zh", "en", "ar"):
        tr += [(r, lang) for r in _sample(rng, [r for r in train.rows if r["lang"] == lang and r["corpus"] != "gsc"], 200)]
        te += [(r, lang) for r in _sample(rng, [r for r in dev.rows if r["lang"] == lang], 100)]
    tasks["language"] = (tr, te)
    tr, te = [], []
    for word, rows in sorted(_by([r for r in train.rows if r["corpus"] == "dsp20"], "word").items()):
        tr += [(r, word) for r in _sample(rng, rows, 30)]
        te += [(r, word) for r in _sample(rng, [r for r in dev.rows if r["corpus"] == "dsp20" and r["word"] == word], 15)]
    tasks["word"] = (tr, te)
    return tasks


def write_test(folder: Path, clips: list[tuple[np.ndarray, str]], rng: np.random.Generator) -> None:
    """TASK/test/c0001.wav ... in a shuffled order and TASK/truth.tsv."""
    (folder / "test").mkdir(parents=True)
    lines = []
    for k, i in enumerate(rng.permutation(len(clips))):
        y, label = clips[i]
        name = f"c{k + 1:04d}.wav"
        sf.write(folder / "test" / name, y, SAMPLE_RATE, subtype="PCM_16")
        lines.append(f"{name}\t{label}\n")
    (folder / "truth.tsv").write_text("".join(lines), encoding="utf-8")


def build(words: Path, noise_dir: Path, work: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    train, dev = Words(words, "train"), Words(words, "dev")
    for name, (tr, te) in split_tasks(train, dev, rng).items():
        folder = work / name
        folder.mkdir(parents=True)
        with open(folder / "train.tsv", "w", encoding="utf-8", newline="") as f:
            csv.writer(f, delimiter="\t", lineterminator="\n").writerows(
                [(str(((train if r["split"] == "train" else dev).folder / r["path"]).resolve()), label) for r, label in tr])
        write_test(folder, [((train if r["split"] == "train" else dev).load(r["path"]), label) for r, label in te], rng)
    noise = load_noise_named(noise_dir)
    halves = {n: (y[: len(y) // 2], y[len(y) // 2:]) for n, y in noise}
    folder = work / "noise-type"
    test = []
    for words_, side, per in ((train, 0, 60), (dev, 1, 30)):
        rows = [r for r in words_.rows if r["corpus"] != "gsc"]
        for n in sorted(halves):
            for k, r in enumerate(_sample(rng, rows, per)):
                y = words_.load(r["path"])
                mixed = mix_at_snr(y, noise_segment(halves[n][side], len(y), rng), rng.uniform(0, 20)).astype(np.float32)
                if side == 0:
                    (folder / "train" / n).mkdir(parents=True, exist_ok=True)
                    sf.write(folder / "train" / n / f"{k:03d}.wav", mixed, SAMPLE_RATE, subtype="PCM_16")
                else:
                    test.append((mixed, n))
    write_test(folder, test, rng)


def run_one(task: Path, budget: float, out: Path, core: int) -> dict:
    """One budgeted training run as the platform makes it: killed at the budget; then scored."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    data = ["--labels", str(task / "train.tsv")] if (task / "train.tsv").exists() else ["--data", str(task / "train")]
    start = time.time()
    cmd = ["taskset", "-c", str(core), sys.executable, "-m", "kws", "classify", "train", *data, "--test", str(task / "test"),
           "--model", str(out / "model"), "--predictions", str(out / "predictions"), "--budget", str(budget),
           "--start", f"{start:.6f}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(out / "train.log", "w") as logf:
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        try:
            p.wait(timeout=max(0.0, start + budget - time.time()))
            killed = False
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            killed = True
    wall = time.time() - start
    r = evaluate(out / "predictions", task / "truth.tsv", budget)
    r.update({"task": task.name, "wall_s": round(wall, 2), "killed_at_budget": killed, "returncode": p.returncode,
              "train_clips": sum(1 for _ in open(task / "train.tsv")) if (task / "train.tsv").exists()
              else sum(1 for _ in (task / "train").rglob("*.wav")),
              "test_clips": sum(1 for _ in open(task / "truth.tsv")),
              "classes": len({line.split("\t")[1] for line in open(task / "truth.tsv")})})
    log.info("%s @ %g s: ALC %.4f, final NAUC %s, wall %.1f s, killed %s", task.name, budget, r["alc"],
             r["final"]["nauc"] if r["final"] else None, wall, killed)
    return r


def plot(results: list[dict], budget: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in results if r["budget_s"] == budget]
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.0), sharey=True)
    for ax, r in zip(np.atleast_1d(axes), rows):
        draw_curve(ax, r, r["task"])
    fig.suptitle(f"kws classify learning curves, budget {budget:g} s", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--words", default="../shared/data/words")
    ap.add_argument("--noise", default="../shared/data/noise-train", help="noise-train (never the dev noise/)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--budgets", default="60,300")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--out", default=None, help="JSON of every run")
    ap.add_argument("--plots", default=None, help="folder for classify_curves-<budget>s.png")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    work = Path(a.work)
    if not (work / "tasks").exists():
        build(Path(a.words), Path(a.noise), work / "tasks.tmp", a.seed)
        (work / "tasks.tmp").rename(work / "tasks")
    runs = [(t, float(b)) for b in a.budgets.split(",") for t in a.tasks.split(",")]
    with ThreadPoolExecutor(a.jobs) as pool:
        futures = [pool.submit(run_one, work / "tasks" / t, b, work / "runs" / f"{t}-{b:g}s", i % a.jobs)
                   for i, (t, b) in enumerate(runs)]
        results = [f.result() for f in futures]
    if a.out:
        Path(a.out).write_text(json.dumps({"seed": a.seed, "cores": os.cpu_count(), "runs": results}, indent=1) + "\n")
    if a.plots:
        for b in sorted({b for _, b in runs}):
            plot(results, b, Path(a.plots) / f"classify_curves-{b:g}s.png")
    return results


if __name__ == "__main__":
    main()
