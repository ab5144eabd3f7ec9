"""The platform commands' bodies: enroll a folder, predict a folder, always leaving complete output.

Knows about files and folders; the numerics live in enroll/detect/calibrate.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws.signal.audio import audio_seconds, list_wavs, read_audio
from kws.scoring.calibrate import Calibration, base_columns, stream_config, use_set_norm
from kws.scoring.cohort import Cohort, load_cohort
from kws.config import BudgetConfig, Config
from kws.scoring.detect import SCORE_NAMES, WORD_NAMES, Prepared, check_compatible, prepare, score_clips
from kws.scoring.dtw import OutOfTime, time_limit
from kws.nn import efficientword
from kws.nn.encoder import load_ge2e
from kws.enrollment.enroll import build_profile
from kws.errors import AudioError, UsageError, WeightsError
from kws.scoring.matcher import matcher_for
from kws.scoring.profile import SpeakerProfile, replacing
from kws.enrollment.quality import assess_files, warn_about_takes
from kws.safefile import atomic_write, write_predictions, write_safe_predictions
from kws.scoring.veto import speaker_veto, speech_crop, veto_threshold
from kws.stages import stage

log = logging.getLogger(__name__)


def enroll_folder(enroll_dir: str | Path, work_dir: str | Path, cfg: Config = Config()) -> SpeakerProfile:
    """Enroll under WORK_DIR's lock; the old profile is set aside first, so a failed or killed enrollment
    leaves no profile in use rather than another speaker's."""
    work_dir = Path(work_dir)
    with replacing(work_dir):
        paths = list_wavs(enroll_dir)
        warn_about_takes(assess_files(paths, cfg))
        profile = build_profile(paths, cfg)
        profile.save(work_dir)
    log.info("profile saved in %s", work_dir)
    return profile


@dataclass(frozen=True)
class Tier:
    """One way of scoring: cheaper tiers drop a stage and use a calibration fitted without it."""
    name: str
    speaker: bool                  # run the speaker encoder
    calibration: Calibration
    by_set: Calibration | None     # the same with test-set normalised columns (None: switched off)


def load_tiers(cfg: Config = Config()) -> list[Tier]:
    """Scoring tiers, best (and slowest) first, with the calibrations of the configured front end."""
    def tier(name: str, speaker: bool) -> Tier:
        return Tier(name, speaker, Calibration.for_config(cfg, keyword_only=not speaker),
                    Calibration.for_config(cfg, not speaker, by_set=True) if cfg.detect.set_norm else None)
    return [tier("full", True), tier("keyword", False)] if cfg.detect.speaker_check else [tier("keyword", False)]


def _rows(scores: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {n: v[rows] for n, v in scores.items()}


def fused_margins(tiers: list[Tier], scores: dict[str, np.ndarray], row_tier: np.ndarray,
                  cfg: Config) -> tuple[np.ndarray, bool]:
    """Each clip's fused score minus its threshold (NaN: not scored; row_tier -1), each clip by the
    calibration of the tier that scored it, and whether test-set normalisation decided.

    Computed over every clip scored so far, so the @set columns see as much of the folder as there is."""
    margin = np.full(len(row_tier), np.nan)
    used = [k for k in range(len(tiers)) if (row_tier == k).any()]
    for k in used:
        cal = tiers[k].calibration
        margin[row_tier == k] = cal.fuse(_rows(scores, row_tier == k)) - cal.threshold
    if not use_set_norm(margin, cfg.detect) or any(tiers[k].by_set is None for k in used):
        return margin, False
    folder = _rows(scores, row_tier >= 0)
    for k in used:
        cal = tiers[k].by_set
        margin[row_tier == k] = cal.fuse(_rows(scores, row_tier == k), folder) - cal.threshold
    return margin, True


def batches(seconds: list[float], cfg: Config) -> list[list[int]]:
    """File indices in batches of at most batch_files files and batch_seconds of audio (a long file goes alone)."""
    out: list[list[int]] = []
    total = 0.0
    for i, sec in enumerate(seconds):
        if not out or len(out[-1]) >= cfg.detect.batch_files or total + sec > cfg.detect.batch_seconds:
            out.append([])
            total = 0.0
        out[-1].append(i)
        total += sec
    return out


def score_paths(profile: SpeakerProfile, paths: list[Path], cohort: Cohort, cfg: Config,
                speaker: bool = True) -> tuple[list[int], dict[str, np.ndarray]]:
    """(positions of the scored paths, their named scores); unreadable or speechless files are logged and left out."""
    idx, clips = [], []
    for i, path in enumerate(paths):
        try:
            with stage("audio"):
                y = read_audio(path, cfg.audio)
            p: Prepared = prepare(y, cfg)
        except AudioError as e:
            log.warning("%s -> predicted 0", e)
            continue
        if not p.has_speech:
            log.info("%s: no speech found -> predicted 0", path.name)
            continue
        idx.append(i)
        clips.append(p)
    return idx, score_clips(profile, clips, cohort, cfg, speaker)


def score_files(profile: SpeakerProfile, paths: list[Path], cfg: Config) -> dict[str, np.ndarray]:
    """Named scores for every path (full tier, no deadline); NaN where a file could not be scored."""
    scores = {n: np.full(len(paths), np.nan) for n in SCORE_NAMES}
    cohort = load_cohort(cfg=cfg.features, voiceprint=cfg.detect.voiceprint)
    for batch in batches([audio_seconds(p) for p in paths], cfg):
        idx, values = score_paths(profile, [paths[i] for i in batch], cohort, cfg)
        for name, v in values.items():
            scores[name][[batch[i] for i in idx]] = v
    return scores


def check_deadline(value: float, source: str, cfg: BudgetConfig) -> float:
    """A deadline the caller gave, if usable: finite epoch seconds (a past one just means out of time)."""
    if not math.isfinite(value) or value < cfg.min_deadline:
        raise UsageError(f"{source}={value!r} is not a deadline in epoch seconds (e.g. {time.time() + 60:.0f}); "
                         "fix or unset it; every file was predicted 0")
    return value


def caller_deadline(cfg: BudgetConfig, environ: dict | None = None) -> float | None:
    """The deadline (epoch seconds) the caller put in the environment, if any; UsageError if unusable."""
    raw = (os.environ if environ is None else environ).get(cfg.deadline_env)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{cfg.deadline_env}={raw!r} is not a number of epoch seconds; fix or unset it; "
                         "every file was predicted 0") from None
    return check_deadline(value, cfg.deadline_env, cfg)


def predict_folder(test_dir: str | Path, work_dir: str | Path, out_file: str | Path,
                   cfg: Config = Config(), deadline: float | None = None,
                   paths: list[Path] | None = None) -> list[int]:
    """Predict every .wav in test_dir by `deadline` (epoch seconds).

    A complete all-0 file is written before anything else, then rewritten after every batch, so a
    kill at any point leaves a complete, legal file. Without a deadline from the caller (argument
    or KWS_DEADLINE), the folder's own platform budget is assumed: base + 0.25 s per audio second.
    When the measured speed says the rest will not fit, scoring drops to a cheaper tier (no
    speaker encoder), and when even that will not fit, the remaining files keep their 0.
    """
    start = time.time()
    if paths is None:     # the CLI has written the all-0 file already, before the heavy imports
        paths = write_safe_predictions(test_dir, out_file)
    names = [p.name for p in paths]
    b = cfg.budget
    deadline = check_deadline(deadline, "--deadline", b) if deadline is not None else caller_deadline(b)
    if not paths:
        log.warning("%s: no .wav files; wrote an empty prediction file", test_dir)
        return []
    profile = SpeakerProfile.load(work_dir, cfg)
    tiers, cohort = load_tiers(cfg), load_cohort(cfg=cfg.features, voiceprint=cfg.detect.voiceprint)
    check_compatible(profile, cfg, work_dir, cohort)
    if cfg.detect.word_embedding:   # the optional model: refused before any clip is scored, not at the first batch
        efficientword.session()
    seconds = [audio_seconds(p) for p in paths]
    deadline = deadline or start + b.predict_base_s + b.predict_per_audio_s * sum(seconds)
    rate = dict(b.prior_rate)                       # wall seconds per audio second, per tier
    decisions = [0] * len(paths)
    scores = {n: np.full(len(paths), np.nan) for n in SCORE_NAMES}
    row_tier = np.full(len(paths), -1)            # which tier scored each file (-1: not scored)
    margin, by_set = np.full(len(paths), np.nan), False
    tier, todo = 0, batches(seconds, cfg)
    for n, batch in enumerate(todo):
        left = deadline - b.margin_s - time.time()
        rest = sum(seconds[i] for k in todo[n:] for i in k)
        while tier + 1 < len(tiers) and rate[tiers[tier].name] * rest > left:
            tier += 1
            log.warning("%.0f s of audio left and %.1f s to go: dropping to the '%s' tier",
                        rest, left, tiers[tier].name)
        batch_s = sum(seconds[i] for i in batch)
        if rate[tiers[tier].name] * batch_s > left:
            log.warning("out of time: %d of %d files keep their 0", len(paths) - todo[n][0], len(paths))
            break
        t = time.time()
        try:
            with time_limit(deadline - b.margin_s):
                idx, values = score_paths(profile, [paths[i] for i in batch], cohort, cfg, tiers[tier].speaker)
        except OutOfTime:
            log.warning("out of time inside a batch: %d of %d files keep their 0", len(paths) - todo[n][0], len(paths))
            break
        rate[tiers[tier].name] = (time.time() - t) / max(batch_s, 1.0)
        rows = [batch[i] for i in idx]
        for name, v in values.items():
            scores[name][rows] = v
        row_tier[rows] = tier
        # Every decision so far is revisited: the @set columns change as more of the folder is scored.
        margin, by_set = fused_margins(tiers, scores, row_tier, cfg)
        decisions = [int(m > 0) for m in np.nan_to_num(margin, nan=-1.0)]
        write_predictions(out_file, names, decisions)
    if cfg.detect.speaker_veto and any(decisions):
        scores["veto"] = np.full(len(paths), np.nan)
        decisions = veto_decisions(profile, paths, decisions, scores["veto"], cfg, deadline - b.margin_s)
        write_predictions(out_file, names, decisions)
    # "fused" on the full tier's plain scale, whichever calibration decided: fused > its threshold <=> 1
    scores["fused"] = margin + tiers[0].calibration.threshold
    write_scores(Path(work_dir) / SCORES_FILE, names, scores, decisions)
    log.info("%d files, %d positive, %.1f s (tier %s%s)", len(paths), sum(decisions), time.time() - start,
             tiers[tier].name, ", test-set normalised" if by_set else "")
    return decisions


def veto_decisions(profile: SpeakerProfile, paths: list[Path], decisions: list[int], veto_scores: np.ndarray,
                   cfg: Config, until: float) -> list[int]:
    """decisions with the accepted files heard again by the speaker veto (DetectConfig.speaker_veto), each
    one's score put in veto_scores; out of time (epoch seconds `until`), the decisions stand as they are."""
    accepted = [i for i, d in enumerate(decisions) if d]
    if time.time() + cfg.budget.veto_rate * sum(audio_seconds(paths[i]) for i in accepted) > until:
        log.warning("out of time for the speaker veto: its %d accepted file(s) stand", len(accepted))
        return decisions
    try:
        with stage("veto"):
            veto = speaker_veto(profile.template_audio, cfg)
            veto_scores[accepted] = veto.scores([speech_crop(read_audio(paths[i], cfg.audio), cfg) for i in accepted])
    except (AudioError, WeightsError) as e:   # a file changed since it was read, or the veto's files are broken
        log.error("%s: the speaker veto is skipped; decisions stand", e)
        return decisions
    out = [0 if d and veto_scores[i] < veto.min_score else d for i, d in enumerate(decisions)]
    log.info("speaker veto: %d of %d accepted file(s) dropped", sum(decisions) - sum(out), len(accepted))
    return out


SCORES_FILE = "predict_scores.tsv"   # beside the profile in WORK_DIR: every score of the last predict, for reports


def write_scores(path: Path, names: list[str], scores: dict[str, np.ndarray], decisions: list[int]) -> None:
    """A TSV of file, every named score (NaN: not scored) and the decision; best effort, never fatal."""
    cols = list(scores)
    lines = ["file\t" + "\t".join(cols) + "\tdecision\n"]
    lines += [f"{n}\t" + "\t".join(f"{scores[c][i]:.5g}" for c in cols) + f"\t{decisions[i]}\n"
              for i, n in enumerate(names)]
    try:
        atomic_write(path, "".join(lines))   # two predicts on one WORK_DIR: readers never see a torn file
    except OSError as e:
        log.warning("could not write %s (%s); predictions are unaffected", path, e)


def check_pretrained(cfg: Config = Config()) -> None:
    """Load every artefact predict needs, so that set-up fails loudly instead of predict failing later."""
    if cfg.detect.voiceprint in ("ge2e", "both") or cfg.detect.speaker_veto:   # the wheel's weights: only these need them
        load_ge2e()
    veto_threshold(cfg)
    cohort = load_cohort(cfg=cfg.features, voiceprint=cfg.detect.voiceprint)
    second = cfg.second_features()
    if second:
        load_cohort(cfg=second, voiceprint="ge2e")      # the second front end's keyword cohort
    tiers = load_tiers(cfg)
    for tier, cal in ((t, c) for t in tiers for c in (t.calibration, t.by_set) if c):
        names = base_columns(cal.names)
        if names - set(SCORE_NAMES):
            raise WeightsError(f"the '{tier.name}' calibration uses unknown score columns "
                               f"{sorted(names - set(SCORE_NAMES))}; refit it")
        if not tier.speaker and any(n.startswith("spk_") for n in names):
            raise WeightsError(f"the '{tier.name}' calibration uses speaker scores, which that tier skips; refit it")
        if ("kw_cnn" in names) != cfg.detect.matcher:
            raise WeightsError(f"the '{tier.name}' calibration {'uses' if 'kw_cnn' in names else 'lacks'} the "
                               f"learned matcher's score but DetectConfig.matcher is {cfg.detect.matcher}; "
                               "refit the calibration or switch the matcher")
        if any(n.startswith("kw_nm_") for n in names) != cfg.detect.noise_match:
            raise WeightsError(f"the '{tier.name}' calibration {'uses' if cfg.detect.noise_match is False else 'lacks'} "
                               f"the noise-matched scores but DetectConfig.noise_match is {cfg.detect.noise_match}; "
                               "refit the calibration or switch noise matching")
        if bool(names & set(WORD_NAMES)) != cfg.detect.word_embedding:
            raise WeightsError(f"the '{tier.name}' calibration {'uses' if names & set(WORD_NAMES) else 'lacks'} the "
                               f"word embedding's scores but DetectConfig.word_embedding is {cfg.detect.word_embedding}; "
                               "refit the calibration or switch the word embedding")
        if any(n.startswith(f"{cfg.detect.second_frontend}_kw_") for n in names) != bool(second):
            raise WeightsError(f"the '{tier.name}' calibration does not match DetectConfig.second_frontend "
                               f"{cfg.detect.second_frontend!r}; refit the calibration or switch it")
    if cfg.detect.matcher:
        matcher_for(cfg.features)
    # The listener's own: its judge, its veto and, when its first front end is not predict's, that cohort.
    listener = stream_config(cfg)
    if cfg.detect.word_embedding or listener.detect.word_embedding:
        efficientword.session()       # the `ewn` extra's model: a clear error naming the install command
    Calibration.for_stream(cfg)
    veto_threshold(listener, stream=True)
    if listener.features != cfg.features:
        load_cohort(cfg=listener.features, voiceprint="ge2e")
    log.info("pretrained artefacts OK: front end %s (second: %s; the listener's: %s), voiceprint %s, cohort of %d "
             "utterances / %d templates, calibrations: %s; speaker check %s, noise matching %s, test-set normalisation %s",
             cfg.features.frontend, second.frontend if second else "none", listener.features.frontend,
             cfg.detect.voiceprint, len(cohort.keyword_frames), len(cohort.templates),
             "; ".join(f"{t.name} on {', '.join(t.calibration.names)}" for t in tiers),
             *("on" if x else "off" for x in (cfg.detect.speaker_check, cfg.detect.noise_match, cfg.detect.set_norm)))
