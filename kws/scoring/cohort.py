"""The impostor cohort shipped in pretrained/: other people's speech that every profile is normalised against.

Built offline by ``scripts/build_cohort.py`` from train-split speakers only.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from kws.config import PRETRAINED_DIR, FeatureConfig
from kws.nn.encoder import frontend_fingerprint, load_multitask, load_trunk_projection
from kws.safefile import file_digest
from kws.signal.vectors import unit
from kws.errors import WeightsError

COHORT_FILE = "cohort.npz"
# The multi-task encoder's speaker embeddings of the same cohort utterances (same seed, same crops),
# for the "encoder" and "both" voiceprints, and the "trunk" voiceprint's; GE2E's are inside every cohort file.
ENCODER_VOICEPRINTS_FILE = "cohort_voiceprints_encoder.npz"
TRUNK_VOICEPRINTS_FILE = "cohort_voiceprints_trunk.npz"


@dataclass(frozen=True)
class Cohort:
    keyword_frames: list[np.ndarray]   # impostor utterances as keyword frames (z-norm of templates)
    templates: list[np.ndarray]        # impostor single words cut like templates (t-norm of test clips)
    speaker_embeddings: np.ndarray     # (N, 256) unit GE2E embeddings of impostor utterances
    sha: str = ""                      # of the files it was read from: profiles normalised by another are refused

    @cached_property
    def unit_templates(self) -> list[np.ndarray]:
        """templates as unit rows, made once: every candidate of a stream is t-normalised against them."""
        return [unit(t) for t in self.templates]

    @staticmethod
    def pack(frames: list[np.ndarray], templates: list[np.ndarray], embeddings: np.ndarray,
             fingerprint: str, int8: bool = False) -> dict[str, np.ndarray]:
        """int8: keyword frames as unit rows x 127 in bytes, half of float16's size (DTW compares unit rows,
        so the scale is immaterial; a cosine moves by under 1e-2)."""
        def rows(a: np.ndarray) -> np.ndarray:
            return np.round(unit(a) * 127).astype(np.int8) if int8 else a.astype(np.float16)
        return dict(frames=rows(np.concatenate(frames)),
                    lengths=np.array([len(f) for f in frames], np.int64),
                    templates=rows(np.concatenate(templates)),
                    template_lengths=np.array([len(f) for f in templates], np.int64),
                    speaker_embeddings=embeddings.astype(np.float16),
                    fingerprint=np.array(fingerprint))


def load_cohort(path: str | Path | None = None, *, cfg: FeatureConfig, voiceprint: str) -> Cohort:
    """The cohort of the configured front end, with speaker embeddings of the configured voiceprint
    (DetectConfig.voiceprint: callers pass it, so the default is only ever config.py's)."""
    path = Path(path) if path else PRETRAINED_DIR / cfg.artefact(COHORT_FILE)
    cohort = _load(str(path), frontend_fingerprint(cfg))
    if voiceprint == "ge2e":
        return cohort
    trunk = voiceprint == "trunk"
    name = TRUNK_VOICEPRINTS_FILE if trunk else ENCODER_VOICEPRINTS_FILE
    enc_path = PRETRAINED_DIR / name
    made_with = load_trunk_projection(load_multitask().sha).sha if trunk else load_multitask().sha
    enc = _load_encoder_voiceprints(str(enc_path), made_with, "trunk" if trunk else "encoder")
    cohort = replace(cohort, sha=f"{cohort.sha}+{_sha(str(enc_path))}")
    if len(enc) != len(cohort.speaker_embeddings):
        raise WeightsError(f"{name} holds {len(enc)} utterances, the cohort {len(cohort.speaker_embeddings)}; "
                           f"rebuild it with scripts/build_cohort.py --voiceprints {'trunk' if trunk else 'encoder'}")
    if voiceprint in ("encoder", "trunk"):
        return replace(cohort, speaker_embeddings=enc)
    return replace(cohort, speaker_embeddings=np.concatenate([cohort.speaker_embeddings, enc], axis=1) / np.sqrt(2))


@lru_cache(maxsize=2)
def _load_encoder_voiceprints(path: str, encoder_sha: str, kind: str) -> np.ndarray:
    """encoder_sha: the weights the embeddings must have been made with (the trunk's: with its projection);
    kind: build_cohort.py's --voiceprints that rebuilds the file."""
    z = _read_arrays(path, "cohort voiceprints", f"scripts/build_cohort.py --voiceprints {kind}",
                     ("speaker_embeddings", "encoder_sha"))
    emb, sha = z["speaker_embeddings"].astype(np.float32), str(z["encoder_sha"])
    if sha != encoder_sha:
        raise WeightsError(f"{path}: made with encoder weights {sha}, these are {encoder_sha}; "
                           f"rebuild with scripts/build_cohort.py --voiceprints {kind}")
    return emb


@lru_cache(maxsize=2)
def _load(path: str, fingerprint: str) -> Cohort:
    z = _read_arrays(path, "cohort file", "scripts/build_cohort.py",
                     ("frames", "lengths", "templates", "template_lengths", "speaker_embeddings", "fingerprint"))
    frames, lengths = z["frames"].astype(np.float32), z["lengths"]
    templates, t_lengths = z["templates"].astype(np.float32), z["template_lengths"]
    emb, fp = z["speaker_embeddings"].astype(np.float32), str(z["fingerprint"])
    if fp != fingerprint:
        raise WeightsError(f"{path}: built for feature settings {fp}, code uses {fingerprint}; "
                           "rebuild with scripts/build_cohort.py")
    if lengths.sum() != len(frames) or t_lengths.sum() != len(templates) or len(emb) == 0:
        raise WeightsError(f"{path}: inconsistent cohort file; restore it from git")
    return Cohort(np.split(frames, np.cumsum(lengths)[:-1]), np.split(templates, np.cumsum(t_lengths)[:-1]), emb,
                  _sha(path))


@lru_cache(maxsize=4)
def _sha(path: str) -> str:
    return file_digest(path)[:10]


def _read_arrays(path: str, what: str, script: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named arrays of a cohort .npz (no pickle); a missing, damaged or incomplete file is a WeightsError."""
    if not Path(path).is_file():
        raise WeightsError(f"{path} is missing; restore pretrained/ from git or rebuild it with {script}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in keys}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise WeightsError(f"{path}: damaged {what} ({e}); restore it from git") from e
