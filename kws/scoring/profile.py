"""SpeakerProfile: everything enrollment learns about one speaker, saved and loaded only here.

On disk: one file, ``profile.npz``: the frame arrays and a ``meta`` member (JSON as bytes), committed
by one rename, so a profile is always whole. Loading reads only the members it knows, each after
checking its size, and validates every type, shape and value before anything uses them; no pickle,
so a profile from an untrusted WORK_DIR can neither run code nor take the machine's memory.

An enrollment into a WORK_DIR holds a lock on it and first sets the old profile aside as
``profile.stale.npz``: if it fails or is killed, predict finds no usable profile and says so,
instead of judging the folder with another speaker's profile.
"""
from __future__ import annotations

import fcntl
import io
import json
import logging
import math
import os
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterator

import numpy as np

from kws.config import DEFAULT, SAMPLE_RATE, Config
from kws.errors import ProfileError
from kws.safefile import atomic_write
from kws.scoring.templates import Templates

log = logging.getLogger(__name__)

PROFILE_VERSION = 3                  # 3: one file with the takes' audio (noise-matched templates)
PROFILE_NAME = "profile.npz"
STALE_NAME = "profile.stale.npz"     # the previous profile while an enrollment runs (or after it failed)
LOCK_NAME = ".enroll.lock"
LEGACY_NAME = "profile.json"         # version 1: two files, renamed one after the other
ARRAYS = ("average", "voiceprint", "kw_cohort_mean", "kw_cohort_std")
MAX_DIM = 4096                       # frame and embedding widths: far above any front end's


@dataclass
class SecondKeywords:
    """The keyword side in the second front end (DetectConfig.second_frontend), made at enrollment from the
    takes as saved (float16), so that predict need not make it again (detect.second_profile)."""
    fingerprint: str                    # encoder.frontend_fingerprint of that front end's FeatureConfig
    templates: list[np.ndarray]
    average: np.ndarray
    kw_cohort_mean: np.ndarray          # as SpeakerProfile's, against that front end's cohort
    kw_cohort_std: np.ndarray
    kw_enroll_mean: float


SECOND_ARRAYS = ("average", "kw_cohort_mean", "kw_cohort_std")


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
    # Whose embedding `voiceprint` is (DetectConfig.voiceprint).
    voiceprint_kind: str
    # Every weight that shaped the profile: front end, voiceprint model, cohort (detect.model_fingerprint).
    model_fingerprint: str = ""
    clips: list[str] = field(default_factory=list)
    clip_seconds: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    version: int = PROFILE_VERSION
    # The enrollment takes as cut for the templates (16 kHz samples, stored as float16): detect.py mixes
    # a noisy test clip's noise into them, so that templates and clip meet in the same conditions.
    template_audio: list[np.ndarray] = field(default_factory=list)
    second: SecondKeywords | None = None

    @property
    def enrolled(self) -> Templates:
        return Templates(self.templates, self.average)

    def all_templates(self) -> list[np.ndarray]:
        """Every template, in the row order of kw_cohort_mean/std (the average last; see kws/templates.py)."""
        return self.enrolled.all()

    def save(self, folder: str | Path) -> None:
        """Write the profile as one file, atomically (the old profile or the new one, never a mix)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"template_{i}": t for i, t in enumerate(self.templates)}
        arrays.update({k: getattr(self, k) for k in ARRAYS})
        arrays.update({f"audio_{i}": np.asarray(a, np.float16) for i, a in enumerate(self.template_audio)})
        meta = {k: v for k, v in asdict(self).items() if k not in {"templates", "template_audio", "second", *ARRAYS}}
        meta["n_templates"] = len(self.templates)
        if self.second is not None:
            s = self.second
            arrays.update({f"second_template_{i}": t for i, t in enumerate(s.templates)})
            arrays.update({f"second_{k}": getattr(s, k) for k in SECOND_ARRAYS})
            meta["second"] = {"fingerprint": s.fingerprint, "kw_enroll_mean": s.kw_enroll_mean}
        # ensure_ascii: a clip name with bytes that are not UTF-8 is stored escaped instead of failing
        arrays["meta"] = np.frombuffer(json.dumps(meta, ensure_ascii=True).encode("ascii"), np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write(folder / PROFILE_NAME, buf.getvalue())

    @classmethod
    def load(cls, folder: str | Path, cfg: Config = DEFAULT) -> "SpeakerProfile":
        """The profile in folder, validated; any problem is a ProfileError naming the file."""
        folder = Path(folder)
        path = folder / PROFILE_NAME
        if not path.is_file():
            if (folder / STALE_NAME).is_file():
                raise ProfileError(f"{folder}: the last enrollment there did not finish, so the profile left "
                                   f"({STALE_NAME}) may be another speaker's and is not used; enroll again")
            if (folder / LEGACY_NAME).is_file():
                raise ProfileError(f"{folder}: a profile of an older version ({LEGACY_NAME}); enroll again")
            raise ProfileError(f"{folder}: no speaker profile ({PROFILE_NAME}); run enrollment.sh first")
        try:
            return _read(path, cfg)
        except ProfileError:
            raise
        except (OSError, ValueError, TypeError, KeyError, EOFError, RecursionError, zipfile.BadZipFile,
                zlib.error, NotImplementedError, RuntimeError, MemoryError) as e:
            raise ProfileError(f"{path}: damaged speaker profile ({type(e).__name__}: {str(e)[:200]}); "
                               "enroll again") from e


def max_template_frames(cfg: Config) -> int:
    """The longest template a profile may hold (ProfileConfig.max_template_s of keyword frames)."""
    from kws.signal.features import frames_per_second
    return int(cfg.profile.max_template_s * frames_per_second(cfg.features))


def _bad(path: Path, what: str) -> ProfileError:
    return ProfileError(f"{path}: invalid speaker profile ({what}); enroll again")


def _member(z: zipfile.ZipFile, name: str, cap: int, path: Path) -> np.ndarray:
    """One .npy member, its size checked before anything is read: no zip bomb, no huge header claim."""
    info = z.getinfo(name + ".npy")
    if info.file_size > cap:
        raise _bad(path, f"{name} holds {info.file_size} bytes, more than the {cap} allowed")
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f, max_header_size=1024)
        if dtype.hasobject or dtype.kind not in "fu" or dtype.itemsize > 8:
            raise _bad(path, f"{name} has dtype {dtype}")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > cap:
            raise _bad(path, f"{name} claims shape {shape}, more than the {cap} bytes allowed")
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise _bad(path, f"{name} is truncated")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C").copy()


def _floats(path: Path, name: str, a: np.ndarray, ndim: int, rows: tuple[int, int] | None = None,
            dim: int | None = None) -> np.ndarray:
    if a.dtype.kind != "f" or a.ndim != ndim:
        raise _bad(path, f"{name} is {a.ndim}-D {a.dtype}, not {ndim}-D float")
    if rows and not rows[0] <= len(a) <= rows[1]:
        raise _bad(path, f"{name} has {len(a)} rows, not {rows[0]}-{rows[1]}")
    if dim is not None and a.shape[-1] != dim:
        raise _bad(path, f"{name} has width {a.shape[-1]}, the templates {dim}")
    if not np.isfinite(a).all():
        raise _bad(path, f"{name} holds NaN or infinite values")
    return a


_FLOAT_META = ("kw_enroll_mean", "spk_cohort_mean", "spk_cohort_std", "spk_enroll_mean")
_STR_META = ("feature_fingerprint", "voiceprint_kind", "model_fingerprint")
_LIST_META = {"clips": str, "warnings": str, "clip_seconds": (int, float)}


def _check_meta(path: Path, meta: object, cfg: Config) -> dict:
    if not isinstance(meta, dict):
        raise _bad(path, f"metadata is a {type(meta).__name__}, not an object")
    known = {f.name for f in fields(SpeakerProfile)} - {"templates", "template_audio", *ARRAYS} | {"n_templates"}
    if unknown := set(meta) - known:
        raise _bad(path, f"unknown metadata {sorted(unknown)[:5]}")
    if missing := known - set(meta) - {"second"}:          # "second": only with a second front end
        raise _bad(path, f"missing metadata {sorted(missing)}")
    second = meta.get("second")
    if second is not None and not (isinstance(second, dict) and set(second) == {"fingerprint", "kw_enroll_mean"}
                                   and isinstance(second["fingerprint"], str)
                                   and type(second["kw_enroll_mean"]) in (int, float)
                                   and math.isfinite(second["kw_enroll_mean"])):
        raise _bad(path, "second is not a fingerprint and a finite kw_enroll_mean")
    if meta["version"] != PROFILE_VERSION or type(meta["version"]) is not int:
        raise ProfileError(f"{path}: profile version {meta['version']!r} but this code reads "
                           f"{PROFILE_VERSION}; enroll again")
    n = meta["n_templates"]
    if type(n) is not int or not 1 <= n <= cfg.profile.max_templates:
        raise _bad(path, f"n_templates {n!r}, not 1-{cfg.profile.max_templates}")
    for k in _FLOAT_META:
        if type(meta[k]) not in (int, float) or not math.isfinite(meta[k]):
            raise _bad(path, f"{k} is {meta[k]!r}, not a finite number")
    for k in _STR_META:
        if not isinstance(meta[k], str):
            raise _bad(path, f"{k} is not a string")
    for k, kind in _LIST_META.items():
        if not isinstance(meta[k], list) or not all(isinstance(v, kind) and type(v) is not bool for v in meta[k]):
            raise _bad(path, f"{k} is not a list of {getattr(kind, '__name__', 'numbers')}")
    return meta


def _read(path: Path, cfg: Config) -> SpeakerProfile:
    cap = cfg.profile.max_member_bytes
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if "meta.npy" not in names:
            raise _bad(path, "no metadata")
        raw = _member(z, "meta", cap, path)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise _bad(path, "metadata is not bytes")
        meta = _check_meta(path, json.loads(raw.tobytes().decode("ascii")), cfg)
        n = meta.pop("n_templates")
        second = meta.pop("second", None)
        expected = {f"{k}.npy" for k in ("meta", *ARRAYS)} | {f"{m}_{i}.npy" for i in range(n) for m in ("template", "audio")}
        if second is not None:
            expected |= {f"second_{k}.npy" for k in SECOND_ARRAYS} | {f"second_template_{i}.npy" for i in range(n)}
        if len(names) != len(set(names)) or set(names) != expected:
            raise _bad(path, f"members {sorted(set(names) ^ expected)[:5]} unexpected or missing")
        frames = (1, max_template_frames(cfg))
        templates = [_member(z, f"template_{i}", cap, path) for i in range(n)]
        dim = templates[0].shape[-1] if templates[0].ndim == 2 else -1
        templates = [_floats(path, f"template_{i}", t, 2, frames, dim) for i, t in enumerate(templates)]
        if not 1 <= dim <= MAX_DIM:
            raise _bad(path, f"template width {dim}")
        arrays = {k: _member(z, k, cap, path) for k in ARRAYS}
        samples = (1, int(cfg.profile.max_template_s * SAMPLE_RATE))
        audio = [_floats(path, f"audio_{i}", _member(z, f"audio_{i}", cap, path), 1, samples).astype(np.float32)
                 for i in range(n)]
        if second is not None:
            t2 = [_member(z, f"second_template_{i}", cap, path) for i in range(n)]
            dim2 = t2[0].shape[-1] if t2[0].ndim == 2 else -1
            if not 1 <= dim2 <= MAX_DIM:
                raise _bad(path, f"second template width {dim2}")
            t2 = [_floats(path, f"second_template_{i}", t, 2, frames, dim2) for i, t in enumerate(t2)]
            a2 = {k: _member(z, f"second_{k}", cap, path) for k in SECOND_ARRAYS}
            _floats(path, "second_average", a2["average"], 2, frames, dim2)
            for k in ("kw_cohort_mean", "kw_cohort_std"):
                _floats(path, f"second_{k}", a2[k], 1, (n + 1, n + 1))
            if (a2["kw_cohort_std"] < 0).any():
                raise _bad(path, "negative second_kw_cohort_std")
            second = SecondKeywords(second["fingerprint"], t2, kw_enroll_mean=float(second["kw_enroll_mean"]), **a2)
    _floats(path, "average", arrays["average"], 2, frames, dim)
    vp = _floats(path, "voiceprint", arrays["voiceprint"], 1, (1, MAX_DIM))
    if not np.linalg.norm(vp) > 0:
        raise _bad(path, "voiceprint is zero")
    for k in ("kw_cohort_mean", "kw_cohort_std"):
        _floats(path, k, arrays[k], 1, (n + 1, n + 1))
    if (arrays["kw_cohort_std"] < 0).any():
        raise _bad(path, "negative kw_cohort_std")
    return SpeakerProfile(templates=templates, template_audio=audio, second=second, **arrays, **meta)


@contextmanager
def enrollment_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's enrollment lock: concurrent enrollments into one folder run one after the other."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s: another enrollment is running there; waiting for it to finish", folder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)   # releases the lock


@contextmanager
def replacing(folder: Path) -> Iterator[None]:
    """Replace folder's profile: under the lock, the old profile is set aside as stale first (one rename),
    so that whatever happens until the new one is committed, no other speaker's profile stays in use."""
    with enrollment_lock(folder):
        for tmp in folder.glob(f".{PROFILE_NAME}.*.tmp"):   # left by a killed enrollment
            tmp.unlink(missing_ok=True)
        if (folder / PROFILE_NAME).is_file():
            os.replace(folder / PROFILE_NAME, folder / STALE_NAME)
        (folder / LEGACY_NAME).unlink(missing_ok=True)
        yield
        (folder / STALE_NAME).unlink(missing_ok=True)
