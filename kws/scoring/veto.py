"""Only my voice: the clips and stream candidates the calibration accepts are heard again by GE2E.

The default speaker columns come from the encoder's voiceprint, which hardly tells the enrolled speaker
from another saying the same phrase (docs/stream_bench.md, v9). GE2E does, but costs too much to run on
every clip or candidate; run on the few accepted, it costs next to nothing. One whose audio (a clip's
speech crop, a candidate's span) scores under the threshold fitted on train data (scripts/fit_veto.py)
is dropped: DetectConfig.speaker_veto (predict), StreamConfig.speaker_veto (the listener).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from kws.config import PRETRAINED_DIR, Config
from kws.errors import WeightsError
from kws.nn.encoder import embed_speakers, ge2e_sha
from kws.scoring.calibrate import calibration_name, stream_config
from kws.scoring.cohort import load_cohort
from kws.scoring.voiceprint import snorm, unit, voiceprint
from kws.signal.vad import frame_decisions, segments_of

log = logging.getLogger(__name__)

ADAPTIVE_TOP = 100   # s-norm over each side's 100 closest cohort utterances: dev EER 5.9 / 13.7 % (results.md, v9)


def veto_name(cfg: Config, stream: bool = False) -> str:
    """veto_[stream_]<...>.json: one threshold per judge (the clip calibration, or the stream's: the listener's
    configuration's, calibrate.stream_config), which decides what reaches the veto."""
    return "veto_" + calibration_name(stream_config(cfg) if stream else cfg, stream=stream).removeprefix("calibration_")


@dataclass(frozen=True)
class VetoThreshold:
    voiceprint: str
    min_score: float                # adaptive s-norm score a candidate's span must reach
    ge2e_sha: str                   # of the GE2E weights the threshold was fitted with
    provenance: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "VetoThreshold":
        path = Path(path)
        try:
            v = cls(**json.loads(path.read_text(encoding="utf-8")))
            float(v.min_score)
        except FileNotFoundError as e:
            raise WeightsError(f"{path} is missing: no speaker veto fitted for this judge; fit one with "
                               f"scripts/fit_veto.py, or turn it off (--set stream.speaker_veto= / detect.speaker_veto=)") from e
        except (ValueError, TypeError) as e:
            raise WeightsError(f"{path}: damaged veto threshold ({e}); restore it from git") from e
        if v.ge2e_sha != ge2e_sha():
            raise WeightsError(f"{path}: fitted with GE2E weights {v.ge2e_sha}, these are {ge2e_sha()}; "
                               f"refit with scripts/fit_veto.py")
        return v


@dataclass(frozen=True)
class SpeakerVeto:
    voiceprint: np.ndarray           # (D,) unit GE2E voiceprint of the enrollment takes
    enroll_cohort: np.ndarray        # (1, C) its cosines to the cohort
    cohort: np.ndarray               # (C, D) unit cohort embeddings
    min_score: float

    @classmethod
    def of(cls, takes: list[np.ndarray], cohort: np.ndarray, min_score: float) -> "SpeakerVeto":
        if not takes:
            raise WeightsError("the speaker veto needs the profile's enrollment audio: enroll again")
        vp = voiceprint(embed_speakers([np.asarray(t, np.float32) for t in takes]))
        cohort = unit(cohort).astype(np.float32)
        return cls(vp, (cohort @ vp)[None, :], cohort, float(min_score))

    def scores(self, spans: list[np.ndarray]) -> np.ndarray:
        """Adaptive s-norm score of each span against the enrolled voice."""
        if not spans:
            return np.zeros(0)
        emb = unit(embed_speakers(spans))
        return snorm((emb @ self.voiceprint)[None, :], self.enroll_cohort, emb @ self.cohort.T, ADAPTIVE_TOP)[0]


def veto_threshold(cfg: Config, stream: bool = False) -> VetoThreshold | None:
    """The configured veto's threshold: predict's (DetectConfig.speaker_veto) or the listener's
    (StreamConfig.speaker_veto); None when it is off."""
    if not (cfg.stream.speaker_veto if stream else cfg.detect.speaker_veto):
        return None
    path = PRETRAINED_DIR / veto_name(cfg, stream)
    if stream and not path.exists():   # on by default: a configuration without its own fit listens without it
        log.warning("no %s: the listener runs without the speaker veto", path.name)
        return None
    return VetoThreshold.load(path)


def speaker_veto(takes: list[np.ndarray], cfg: Config, stream: bool = False) -> SpeakerVeto | None:
    """The configured veto (veto_threshold) for a phrase enrolled from these takes; None when it is off."""
    threshold = veto_threshold(cfg, stream)
    if threshold is None:
        return None
    # GE2E embeddings of the cohort utterances ship with the MFCC cohort, whatever the front end.
    cohort = load_cohort(cfg=replace(cfg.features, frontend="mfcc"), voiceprint="ge2e").speaker_embeddings
    try:
        return SpeakerVeto.of(takes, cohort, threshold.min_score)
    except WeightsError as e:   # the GE2E wheel missing: say how to do without, too
        off = "stream.speaker_veto=" if stream else "detect.speaker_veto="
        raise WeightsError(f"{e}; or go without the speaker veto: --set {off}") from e


def speech_crop(y: np.ndarray, cfg: Config) -> np.ndarray:
    """A clip's samples from its first speech onset to its last offset (detect.prepare's crop, without
    the keyword frames): what the veto hears of a clip."""
    segs = segments_of(frame_decisions(y, cfg.vad), cfg.vad, len(y))
    return y[segs[0][0]:segs[-1][1]] if segs else y
