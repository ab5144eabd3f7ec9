"""SpeakerProfile: everything enrollment learns about one speaker, saved and loaded only here.

On disk: ``profile.json`` (metadata, statistics) and ``profile.npz`` (frame arrays), loaded
without pickle, so a profile from an untrusted WORK_DIR cannot execute code.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import ProfileError

PROFILE_VERSION = 2   # 2: template_audio (noise-matched templates)
JSON_NAME, NPZ_NAME = "profile.json", "profile.npz"


@dataclass
class SpeakerProfile:
    templates: list[np.ndarray]         # keyword frames of each usable enrollment clip (T_i x D)
    average: np.ndarray                 # DTW-averaged template (T x D)
    voiceprint: np.ndarray              # unit speaker embedding of voiceprint_kind, mean of the clips
    # Statistics that turn raw scores into per-speaker normalised ones (see detect.py).
    kw_cohort_mean: np.ndarray          # per template (+ average last): mean distance to impostor speech
    kw_cohort_std: np.ndarray
    kw_enroll_mean: float               # mean leave-one-out distance between enrollment clips
    spk_cohort_mean: float              # voiceprint cosine against impostor speakers
    spk_cohort_std: float
    spk_enroll_mean: float              # leave-one-out cosine of each clip to the others' voiceprint
    feature_fingerprint: str
    # Whose embedding `voiceprint` is (DetectConfig.voiceprint); profiles saved before the switch are GE2E's.
    voiceprint_kind: str = "ge2e"
    clips: list[str] = field(default_factory=list)
    clip_seconds: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    version: int = PROFILE_VERSION
    # The enrollment takes as cut for the templates (16 kHz samples): detect.py mixes a noisy test
    # clip's own noise into them, so that templates and clip meet in the same conditions.
    template_audio: list[np.ndarray] = field(default_factory=list)

    def all_templates(self) -> list[np.ndarray]:
        return [*self.templates, self.average]

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"template_{i}": t for i, t in enumerate(self.templates)}
        arrays.update({f"audio_{i}": np.round(np.clip(a, -1, 1) * 32767).astype(np.int16)
                       for i, a in enumerate(self.template_audio)})
        arrays.update(average=self.average, voiceprint=self.voiceprint,
                      kw_cohort_mean=self.kw_cohort_mean, kw_cohort_std=self.kw_cohort_std)
        meta = {k: v for k, v in asdict(self).items() if k not in {"templates", "template_audio", *arrays}}
        meta["n_templates"] = len(self.templates)
        # Write both files under temporary names, then rename: a killed enrollment never leaves half a profile.
        _atomic(folder / NPZ_NAME, lambda f: np.savez(f, **arrays), binary=True)
        _atomic(folder / JSON_NAME, lambda f: json.dump(meta, f, indent=1, ensure_ascii=False), binary=False)

    @classmethod
    def load(cls, folder: str | Path) -> "SpeakerProfile":
        folder = Path(folder)
        jp, npz = folder / JSON_NAME, folder / NPZ_NAME
        if not jp.is_file() or not npz.is_file():
            raise ProfileError(f"{folder}: no speaker profile ({JSON_NAME} + {NPZ_NAME}); run enrollment.sh first")
        try:
            meta = json.loads(jp.read_text(encoding="utf-8"))
            with np.load(npz, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise ProfileError(f"{folder}: damaged speaker profile ({e}); enroll again") from e
        if meta.get("version") != PROFILE_VERSION:
            raise ProfileError(f"{folder}: profile version {meta.get('version')} but this code reads "
                               f"{PROFILE_VERSION}; enroll again")
        n = meta.pop("n_templates")
        try:
            templates = [arrays.pop(f"template_{i}") for i in range(n)]
            audio = [arrays.pop(f"audio_{i}").astype(np.float32) / 32767 for i in range(n)]
            return cls(templates=templates, template_audio=audio, **arrays, **meta)
        except (KeyError, TypeError) as e:
            raise ProfileError(f"{folder}: incomplete speaker profile ({e}); enroll again") from e


def _atomic(path: Path, write, binary: bool) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
