#!/usr/bin/env python3
"""Build the wake-word training set in the official training layout: real speakers, synthetic speakers, augmentation.

    python scripts/build_training_set.py --words ../shared/data/words --noise build/train-noise \\
        --out SCRATCH/kws-trainset [--synthetic 120] [--jobs 2] [--seed 1]

Writes OUT/T###/keywords/*.wav and OUT/T###/others/*.wav (16 kHz mono 16-bit), one T### per speaker:
  T001..  the real speakers of the words corpus, train split only (dsp20 Mandarin+English, asc Arabic):
          2-3 of each speaker's words are its wake words (keywords/), its other words go to others/;
  then    the synthetic speakers (espeak-ng, flite, festival; scripts/synth_speakers.py): 2-3 multi-syllable
          wake phrases x 10 takes in keywords/, ~20 other phrases (confusables included) in others/.
A seeded fraction of all takes is augmented (scripts/augment.py: noise, simulated rooms, speed/pitch,
band limits, level). Also OUT/manifest.tsv (one row per wav), OUT/speakers.tsv and OUT/build_info.json.

Deterministic: every random draw is seeded by (seed, speaker, phrase, take), so the same arguments
give byte-identical files whatever --jobs is. Logs one line per speaker as it is done.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import multiprocessing
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import kws

kws.limit_blas_threads()  # before numpy: two worker processes on two cores, one BLAS thread each

import numpy as np
import soundfile as sf

from kws.signal.audio import to_mono_16k, write_wav
from kws.config import SAMPLE_RATE
from kws.app.progress import Progress
from noise_rule import TRAIN_NOISE_DIR, check_training_noise
from augment import AugmentConfig, Augmenter, Room, load_noise_named, make_rir
from synth_speakers import (ENGINE_LICENCES, SpeakerSpec, SynthError, available_engines, engine_version,
                            make_speaker, render_take)

log = logging.getLogger("build_training_set")

SR = SAMPLE_RATE
MANIFEST_FIELDS = ["path", "speaker", "source", "lang", "text", "role", "take", "seconds", "augment", "origin",
                   "prosody", "licence"]
# domain tags of the seeds, so no two kinds of draw ever share a stream
SEED_REAL_SPEAKER, SEED_REAL_AUG, SEED_SYNTH_TAKE, SEED_SYNTH_AUG, SEED_RIR = 10, 11, 20, 21, 30


class BuildError(RuntimeError):
    """Bad input found while building (raised in workers as an ordinary exception; main exits with it)."""


# ---------------------------------------------------------------- plan

@dataclass(frozen=True)
class Clip:
    path: str        # relative to the words folder
    word: str
    lang: str
    rep: int
    licence: str


@dataclass(frozen=True)
class RealJob:
    """One real speaker: all its train clips, and which of its words are its wake words."""
    key: int                      # position in the interleaved speaker order (seeds its augmentation)
    tname: str
    corpus: str
    speaker: str
    words: tuple[str, ...]        # all its words, sorted (file names use the index)
    keywords: tuple[str, ...]
    clips: tuple[Clip, ...]


@dataclass(frozen=True)
class SynthJob:
    tname: str
    spec: SpeakerSpec
    takes: int                    # per wake phrase
    other_takes: int              # per other phrase


def read_words(folder: Path) -> dict[tuple[str, str], list[Clip]]:
    """(corpus, speaker) -> its train-split clips, sorted. Only split == train is ever read."""
    manifest = folder / "manifest.tsv"
    if not folder.is_dir():
        raise SystemExit(f"words folder {folder} not found; pass --words ../shared/data/words (or --max-real 0)")
    if not manifest.is_file():
        raise SystemExit(f"{manifest} not found; the words folder needs its manifest.tsv")
    out: dict[tuple[str, str], list[Clip]] = defaultdict(list)
    with open(manifest, encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = {"path", "split", "corpus", "speaker", "word", "lang", "rep"} - set(reader.fieldnames or [])
        if missing:
            raise SystemExit(f"{manifest}: missing columns {sorted(missing)}")
        for r in reader:
            if r["split"] == "train":
                out[(r["corpus"], r["speaker"])].append(
                    Clip(r["path"], r["word"], r["lang"], int(r["rep"]), r.get("licence", "")))
    if not out:
        raise SystemExit(f"{manifest} has no split == train rows")
    return {k: sorted(v, key=lambda c: (c.word, c.rep, c.path)) for k, v in sorted(out.items())}


def interleave_corpora(keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Speakers ordered 1st of each corpus, 2nd of each corpus, ...: any prefix (--max-real) mixes languages."""
    by_corpus: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for k in sorted(keys):
        by_corpus[k[0]].append(k)
    rank = {k: i for ks in by_corpus.values() for i, k in enumerate(ks)}
    return sorted(rank, key=lambda k: (rank[k], k))


def choose_keywords(words: tuple[str, ...], mean_seconds: dict[str, float], rng: np.random.Generator,
                    n: int | None) -> tuple[str, ...]:
    """n (default 2 or 3) of a speaker's words as its wake words, drawn from the longer half by mean take
    length: longer words have more syllables, and wake words are chosen for that."""
    longer = sorted(words, key=lambda w: (-mean_seconds.get(w, 0.0), w))[:max(2, (len(words) + 1) // 2)]
    n = int(rng.integers(2, 4)) if n is None else n
    return tuple(sorted(longer[i] for i in rng.choice(len(longer), size=min(n, len(longer)), replace=False)))


def plan_real(folder: Path, seed: int, max_real: int | None, n_keywords: int | None) -> list[RealJob]:
    """One job per real train speaker, corpora interleaved; the wake words are seeded by the speaker's position."""
    speakers = read_words(folder)
    durations = _mean_seconds(folder)
    jobs = []
    for key, (corpus, spk) in enumerate(interleave_corpora(speakers)):
        if max_real is not None and key >= max_real:
            break
        clips = speakers[(corpus, spk)]
        words = tuple(sorted({c.word for c in clips}))
        rng = np.random.default_rng([seed, SEED_REAL_SPEAKER, key])
        kw = choose_keywords(words, {w: durations.get((spk, w), 0.0) for w in words}, rng, n_keywords)
        jobs.append(RealJob(key, "", corpus, spk, words, kw, tuple(clips)))
    return jobs


def _mean_seconds(folder: Path) -> dict[tuple[str, str], float]:
    """(speaker, word) -> mean 'seconds' of its train takes, from the manifest (no audio decoding)."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    with open(folder / "manifest.tsv", encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["split"] == "train" and r.get("seconds"):
                acc[(r["speaker"], r["word"])].append(float(r["seconds"]))
    return {k: float(np.mean(v)) for k, v in acc.items()}


# ---------------------------------------------------------------- workers

_STATE: dict = {}


def _init_worker(words: Path | None, out: Path, noises, rirs, aug_cfg: AugmentConfig, seed: int) -> None:
    _STATE.update(words=words, out=out, aug=Augmenter(noises, rirs, aug_cfg), seed=seed)


def _row(path: Path, y: np.ndarray, **kw) -> dict:
    write_wav(_STATE["out"] / path, y)
    return dict(path=path.as_posix(), seconds=f"{len(y) / SR:.3f}", **kw)


def build_real(job: RealJob) -> list[dict]:
    """Convert (and maybe augment) every train clip of one real speaker into its T### folder."""
    words, seed, aug = _STATE["words"], _STATE["seed"], _STATE["aug"]
    rows = []
    for c in job.clips:
        role = "keyword" if c.word in job.keywords else "other"
        widx = job.words.index(c.word)
        try:
            y, sr = sf.read(words / c.path, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise BuildError(f"{words / c.path}: not readable ({e}); is the words folder complete?") from e
        y = to_mono_16k(y, sr)
        rng = np.random.default_rng([seed, SEED_REAL_AUG, job.key, widx, c.rep])
        y, desc = aug(y, rng)
        sub, tag = ("keywords", "kw") if role == "keyword" else ("others", "ot")
        rows.append(_row(Path(job.tname) / sub / f"{job.tname}_{tag}{widx + 1:02d}_{c.rep:02d}.wav", y,
                         speaker=job.tname, source=job.corpus, lang=c.lang, text=c.word, role=role, take=c.rep,
                         augment=desc, origin=c.path, prosody="-", licence=c.licence))
    return rows


def build_synth(job: SynthJob) -> list[dict]:
    """Render every take of one synthetic speaker (wake phrases x takes, other phrases x other_takes)."""
    seed, aug, spec = _STATE["seed"], _STATE["aug"], job.spec
    rows = []
    plan = [("keyword", j, p, job.takes) for j, p in enumerate(spec.wake)] + \
           [("other", j, p, job.other_takes) for j, p in enumerate(spec.others)]
    for role, j, text, takes in plan:
        r = 0 if role == "keyword" else 1
        for t in range(takes):
            y, take = render_take(spec, text, np.random.default_rng([seed, SEED_SYNTH_TAKE, spec.index, r, j, t]))
            y, desc = aug(y, np.random.default_rng([seed, SEED_SYNTH_AUG, spec.index, r, j, t]))
            sub, tag = ("keywords", "kw") if role == "keyword" else ("others", "ot")
            rows.append(_row(Path(job.tname) / sub / f"{job.tname}_{tag}{j + 1:02d}_{t + 1:02d}.wav", y,
                             speaker=job.tname, source=spec.engine, lang=spec.lang, text=text, role=role, take=t + 1,
                             augment=desc, origin=f"{spec.voice} vtl{spec.vtl:.3f}", prosody=take.describe(),
                             licence=ENGINE_LICENCES[spec.engine]))
    return rows


def run_job(job: RealJob | SynthJob) -> tuple[str, list[dict], float]:
    t0 = time.perf_counter()
    (_STATE["out"] / job.tname / "keywords").mkdir(parents=True, exist_ok=True)
    (_STATE["out"] / job.tname / "others").mkdir(parents=True, exist_ok=True)
    rows = build_real(job) if isinstance(job, RealJob) else build_synth(job)
    return job.tname, rows, time.perf_counter() - t0


def _rir(args: tuple[int, int, int]) -> tuple[np.ndarray, Room]:
    seed, i, n = args
    rng = np.random.default_rng([seed, SEED_RIR, i])
    rt60 = 0.2 + 0.6 * (i + rng.random()) / n     # stratified: the bank covers 0.2-0.8 s evenly
    return make_rir(rng, rt60)


# ---------------------------------------------------------------- main

def describe(job: RealJob | SynthJob) -> str:
    if isinstance(job, RealJob):
        return f"{job.corpus} {job.speaker} keywords {'/'.join(job.keywords)}"
    return job.spec.describe()


def prepare_out(out: Path, force: bool) -> None:
    """Refuse to mix two builds in one folder unless --force, which removes the previous build's outputs only."""
    previous = sorted(p for p in out.glob("T[0-9][0-9][0-9]*") if p.is_dir()) if out.is_dir() else []
    ours = [out / n for n in ("manifest.tsv", "speakers.tsv", "build_info.json") if (out / n).exists()]
    if (previous or ours) and not force:
        raise SystemExit(f"{out} already holds a training set ({len(previous)} speaker folders); "
                         "pass --force to replace it or choose another --out")
    for p in previous:
        shutil.rmtree(p)
    for p in ours:
        p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def write_tsv(path: Path, rows: list[dict], fields: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def summarise(rows: list[dict], jobs: list) -> dict:
    secs = sum(float(r["seconds"]) for r in rows)
    return dict(speakers=len(jobs), real_speakers=sum(isinstance(j, RealJob) for j in jobs),
                synthetic_speakers=sum(isinstance(j, SynthJob) for j in jobs), files=len(rows),
                keyword_files=sum(r["role"] == "keyword" for r in rows),
                other_files=sum(r["role"] == "other" for r in rows),
                augmented_files=sum(r["augment"] != "none" for r in rows), hours=round(secs / 3600, 3),
                files_by_lang=dict(sorted(Counter(r["lang"] for r in rows).items())),
                files_by_source=dict(sorted(Counter(r["source"] for r in rows).items())),
                speakers_by_source=dict(sorted(Counter(r["source"] for r in
                                                       {r["speaker"]: r for r in rows}.values()).items())))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--words", default="../shared/data/words",
                    help="words corpus folder (manifest.tsv); its train split only is read")
    ap.add_argument("--noise", default=TRAIN_NOISE_DIR, help="folder of 16 kHz noise recordings (never the dev noise)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--synthetic", type=int, default=120, help="number of synthetic speakers (0: none)")
    ap.add_argument("--max-real", type=int, default=None, help="use only the first N real speakers (default: all)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (outputs do not depend on it)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wake", type=int, default=None, help="wake phrases per synthetic speaker (default: 2 or 3)")
    ap.add_argument("--takes", type=int, default=10, help="takes per synthetic wake phrase")
    ap.add_argument("--others", type=int, default=20, help="other phrases per synthetic speaker")
    ap.add_argument("--other-takes", type=int, default=1, help="takes per synthetic other phrase")
    ap.add_argument("--real-keywords", type=int, default=None, help="wake words per real speaker (default: 2 or 3)")
    ap.add_argument("--augment-fraction", type=float, default=AugmentConfig.fraction,
                    help="fraction of takes augmented (seeded per file)")
    ap.add_argument("--rirs", type=int, default=40, help="simulated rooms in the reverberation bank (0: no reverb)")
    ap.add_argument("--force", action="store_true", help="replace a previous build in --out")
    a = ap.parse_args(argv)
    if a.jobs < 1 or a.synthetic < 0 or a.takes < 1 or a.others < 0 or a.other_takes < 1 or a.rirs < 0:
        ap.error("--jobs and --takes must be >= 1; --synthetic, --others, --rirs >= 0")
    if not 0 <= a.augment_fraction <= 1:
        ap.error("--augment-fraction must be in [0, 1]")
    return a


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    out, words, noise_dir = Path(a.out), Path(a.words), Path(a.noise)

    real = plan_real(words, a.seed, a.max_real, a.real_keywords) if a.max_real != 0 else []
    engines = available_engines()
    if a.synthetic:
        if "espeak-ng" not in engines:
            raise SystemExit("espeak-ng is not installed: apt-get install espeak-ng (or pass --synthetic 0)")
        for e in ("flite", "festival"):
            if e not in engines:
                pkgs = "flite" if e == "flite" else "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
                log.warning("%s not usable (apt-get install %s sox): its English speakers use espeak-ng", e, pkgs)
    check_training_noise(noise_dir)
    noises = load_noise_named(noise_dir)
    if not noises:
        raise SystemExit(f"{noise_dir} has no .flac or .wav noise recordings")
    prepare_out(out, a.force)

    jobs: list[RealJob | SynthJob] = []
    for i, j in enumerate(real):
        jobs.append(RealJob(j.key, f"T{i + 1:03d}", j.corpus, j.speaker, j.words, j.keywords, j.clips))
    for i in range(a.synthetic):
        spec = make_speaker(i, a.seed, engines, a.wake, a.others)
        jobs.append(SynthJob(f"T{len(real) + i + 1:03d}", spec, a.takes, a.other_takes))
    log.info("%d real speakers (%d clips), %d synthetic speakers; engines: %s; %d noise recordings; %d jobs",
             len(real), sum(len(j.clips) for j in real), a.synthetic, ", ".join(sorted(engines)), len(noises), a.jobs)

    aug_cfg = AugmentConfig(fraction=a.augment_fraction)
    if shutil.which("sox") is None:
        log.warning("sox not installed (apt-get install sox): no pitch or tempo augmentation, "
                    "no flite/festival speakers")
        aug_cfg = AugmentConfig(fraction=a.augment_fraction, p_pitch=0.0, p_tempo=0.0)
    ctx = multiprocessing.get_context("fork")
    rows: list[dict] = []
    seconds: dict[str, float] = {}
    with ctx.Pool(a.jobs) as pool:
        t = time.perf_counter()
        rirs = pool.map(_rir, [(a.seed, i, a.rirs) for i in range(a.rirs)], chunksize=1)
        log.info("simulated %d room impulse responses (RT60 0.2-0.8 s) in %.1f s", len(rirs), time.perf_counter() - t)
    with ctx.Pool(a.jobs, initializer=_init_worker,
                  initargs=(words, out, noises, rirs, aug_cfg, a.seed)) as pool:
        by_name = {j.tname: j for j in jobs}
        bar = Progress(len(jobs), "speakers", every_s=0)
        for tname, job_rows, took in pool.imap_unordered(run_job, jobs, chunksize=1):
            rows += job_rows
            kw = sum(r["role"] == "keyword" for r in job_rows)
            seconds[tname] = sum(float(r["seconds"]) for r in job_rows)
            bar.update(note=f"{tname} {describe(by_name[tname])}: {kw} keyword + {len(job_rows) - kw} other files, "
                            f"{seconds[tname]:.0f} s audio, {took:.1f} s")
        bar.close()

    rows.sort(key=lambda r: r["path"])
    write_tsv(out / "manifest.tsv", rows, MANIFEST_FIELDS)
    spk_rows = []
    for j in jobs:
        mine = [r for r in rows if r["speaker"] == j.tname]
        if isinstance(j, RealJob):
            extra = dict(source=j.corpus, lang="/".join(sorted({c.lang for c in j.clips})), voice=j.speaker,
                         wake=" | ".join(j.keywords))
        else:
            extra = dict(source=j.spec.engine, lang=j.spec.lang, voice=j.spec.describe(), wake=" | ".join(j.spec.wake))
        spk_rows.append(dict(speaker=j.tname, **extra, keyword_files=sum(r["role"] == "keyword" for r in mine),
                             other_files=sum(r["role"] == "other" for r in mine),
                             seconds=f"{seconds[j.tname]:.1f}"))
    write_tsv(out / "speakers.tsv", spk_rows,
              ["speaker", "source", "lang", "voice", "wake", "keyword_files", "other_files", "seconds"])
    summary = summarise(rows, jobs)
    # no paths of this run, --jobs or timings: two builds with the same inputs give the same bytes
    info = dict(command="scripts/build_training_set.py",
                args={k: v for k, v in vars(a).items() if k not in ("out", "jobs", "force")},
                engines={e: engine_version(e) for e in sorted(engines)}, augment=asdict(aug_cfg), **summary)
    (out / "build_info.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("done: %d speakers (%d real, %d synthetic), %d files (%d keyword, %d other, %d augmented), %.2f h "
             "of audio, languages %s, sources %s in %.0f s", summary["speakers"], summary["real_speakers"],
             summary["synthetic_speakers"], summary["files"], summary["keyword_files"], summary["other_files"],
             summary["augmented_files"], summary["hours"], summary["files_by_lang"], summary["speakers_by_source"],
             time.perf_counter() - t0)
    return summary


if __name__ == "__main__":
    try:
        main()
    except (BuildError, SynthError) as e:
        raise SystemExit(str(e)) from e
