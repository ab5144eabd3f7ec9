"""The platform commands' bodies: enroll a folder, predict a folder, always leaving complete output.

Knows about files and folders; the numerics live in enroll/detect/calibrate.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .audio import list_wavs, read_audio
from .calibrate import Calibration
from .cohort import load_cohort
from .config import Config
from .detect import SCORE_NAMES, Prepared, prepare, score_clips
from .encoder import ge2e_weights_path, load_ge2e
from .errors import AudioError, WeightsError
from .enroll import build_profile
from .profile import SpeakerProfile

log = logging.getLogger(__name__)


def enroll_folder(enroll_dir: str | Path, work_dir: str | Path, cfg: Config = Config()) -> SpeakerProfile:
    paths = list_wavs(enroll_dir)
    profile = build_profile(paths, cfg)
    profile.save(work_dir)
    log.info("profile saved in %s", work_dir)
    return profile


def write_predictions(path: str | Path, names: list[str], decisions: list[int]) -> None:
    """Write `<name>\\t<0|1>` lines via a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(f"{n}\t{int(d)}\n" for n, d in zip(names, decisions))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def score_batches(profile: SpeakerProfile, paths: list[Path], cfg: Config):
    """Yield (indices, named scores) batch by batch; unreadable or speechless files are logged and left out.

    Batches of cfg.detect.batch_files bound memory and let callers save progress.
    """
    cohort = load_cohort(cfg=cfg.features)
    for b in range(0, len(paths), cfg.detect.batch_files):
        idx, clips = [], []
        for i in range(b, min(b + cfg.detect.batch_files, len(paths))):
            try:
                p: Prepared = prepare(read_audio(paths[i], cfg.audio), cfg)
            except AudioError as e:
                log.warning("%s -> predicted 0", e)
                continue
            if not p.has_speech:
                log.info("%s: no speech found -> predicted 0", paths[i].name)
                continue
            idx.append(i)
            clips.append(p)
        yield idx, score_clips(profile, clips, cohort, cfg)


def score_files(profile: SpeakerProfile, paths: list[Path], cfg: Config) -> dict[str, np.ndarray]:
    """Named scores for every path; NaN where a file could not be scored."""
    scores = {n: np.full(len(paths), np.nan) for n in SCORE_NAMES}
    for idx, batch in score_batches(profile, paths, cfg):
        for name, values in batch.items():
            scores[name][idx] = values
    return scores


def predict_folder(test_dir: str | Path, work_dir: str | Path, out_file: str | Path,
                   cfg: Config = Config(), calibration: Calibration | None = None) -> list[int]:
    """Predict every .wav in test_dir. A complete all-0 file is written before any scoring starts,
    and rewritten after every batch, so a kill at any point leaves a complete, legal file."""
    t0 = time.perf_counter()
    paths = list_wavs(test_dir)
    names = [p.name for p in paths]
    write_predictions(out_file, names, [0] * len(names))
    if not paths:
        log.warning("%s: no .wav files; wrote an empty prediction file", test_dir)
        return []
    profile = SpeakerProfile.load(work_dir)
    calibration = calibration or Calibration.load()
    decisions = [0] * len(paths)
    scores = {n: np.full(len(paths), np.nan) for n in (*SCORE_NAMES, "fused")}
    for idx, batch in score_batches(profile, paths, cfg):
        fused = calibration.fuse(batch)
        for name, values in (*batch.items(), ("fused", fused)):
            scores[name][idx] = values
        for i, f in zip(idx, fused):
            decisions[i] = int(f > calibration.threshold)
        write_predictions(out_file, names, decisions)
    write_scores(Path(work_dir) / SCORES_FILE, names, scores, decisions)
    log.info("%d files, %d positive, %.1f s", len(paths), sum(decisions), time.perf_counter() - t0)
    return decisions


SCORES_FILE = "predict_scores.tsv"   # beside the profile in WORK_DIR: every score of the last predict, for reports


def write_scores(path: Path, names: list[str], scores: dict[str, np.ndarray], decisions: list[int]) -> None:
    """A TSV of file, every named score (NaN: not scored) and the decision; best effort, never fatal."""
    cols = list(scores)
    lines = ["file\t" + "\t".join(cols) + "\tdecision\n"]
    lines += [f"{n}\t" + "\t".join(f"{scores[c][i]:.5g}" for c in cols) + f"\t{decisions[i]}\n"
              for i, n in enumerate(names)]
    try:
        path.write_text("".join(lines), encoding="utf-8")
    except OSError as e:
        log.warning("could not write %s (%s); predictions are unaffected", path, e)


def check_pretrained() -> None:
    """Load every artefact predict needs, so that set-up fails loudly instead of predict failing later."""
    load_ge2e()
    cohort = load_cohort()
    cal = Calibration.load()
    unknown = set(cal.names) - set(SCORE_NAMES)
    if unknown:
        raise WeightsError(f"calibration uses unknown score columns {sorted(unknown)}; refit it")
    log.info("pretrained artefacts OK: GE2E %s, cohort of %d utterances / %d templates, calibration on %s",
             ge2e_weights_path().name, len(cohort.keyword_frames), len(cohort.templates), ", ".join(cal.names))
