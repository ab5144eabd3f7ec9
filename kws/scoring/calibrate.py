"""Fusion of named scores into one calibrated score, and the global threshold on it.

Applying a calibration is here; fitting (kws/training/fitting.py) is driven offline by
``scripts/fit_calibration.py`` on train-split task sets, never on dev or practice.

Test-set normalisation: a column named ``<score>@set`` is ``<score>`` standardised over the
whole test folder being predicted (no labels, only the other clips' scores), and ``<score>@top``
is its distance above the folder's TOP_PERCENTILE, in the folder's standard deviations: how far a
clip stands out from the folder's best-scoring few. A speaker whose templates sit far from
everything (a long phrase, an odd microphone) then keeps the same scale as any other. It assumes
what the platform promises, mostly negatives in a folder, so predict uses it only when the folder
is large enough and the plain calibration finds at most half of it positive
(DetectConfig.set_min_files, set_max_positive); otherwise the plain calibration decides. Speaker
and condition columns are seen against the folder too (scores.Column.per_set).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from kws.config import PRETRAINED_DIR, Config, DetectConfig, listener_config
from kws.errors import WeightsError

log = logging.getLogger(__name__)

SET_SUFFIX = "@set"                       # a column standardised over the test folder (see above)
TOP_SUFFIX = "@top"                       # a column's distance above the folder's TOP_PERCENTILE (see above)
# The platform's folders hold 5 positives in 50, so the 90th percentile sits at their edge; train-table
# CV: 0.277 at 90 against 0.282 without @top columns and 0.290 at 95 (docs/results.md, v6).
TOP_PERCENTILE = 90.0
PRODUCT = "*"                             # a column that is the product of two others: a*b
RANGE_PERCENTILES = (0.5, 99.5)           # each column is clipped to this range of its training values


def stream_config(cfg: Config) -> Config:
    """The configuration the listener scores with, so that its judge always weighs the columns it was fitted
    on: the first of its own first keyword front end (StreamConfig.frontend, config.listener_config), then
    predict's, each with spans judged whole (StreamConfig.span_vad_crop false) and then cut to speech, for which
    a stream judge is fitted; the last when none is (--set stream.denoise=rnnoise has its judge in MFCC on cut
    spans only). Its voiceprint is StreamConfig.voiceprint's either way."""
    own = listener_config(cfg)
    tries = []
    for c in (own, replace(own, features=cfg.features)):
        for t in (c, replace(c, stream=replace(c.stream, span_vad_crop=True))):
            if t not in tries:
                tries.append(t)
    chosen = next((t for t in tries if _has_stream_judge(t)), tries[-1])
    if chosen != own:
        log.info("no stream judge in the %s front end on %s spans for this configuration: the listener uses %s on %s "
                 "spans", own.features.frontend, "cut" if own.stream.span_vad_crop else "whole",
                 chosen.features.frontend, "cut" if chosen.stream.span_vad_crop else "whole")
    return chosen


def _has_stream_judge(cfg: Config) -> bool:
    return (PRETRAINED_DIR / calibration_name(cfg, stream=True)).exists()


def calibration_name(cfg: Config, keyword_only: bool = False, by_set: bool = False, stream: bool = False) -> str:
    """calibration[_stream][_keyword][_<frontend>][_plus-<second frontend>][_matcher][_ewn][_voice-<voiceprint>][_nm]
    [_denoise-<denoiser>][_whole][_set].json: one fit per set of scores.

    keyword_only: without the speaker scores, predict's fallback tier when short of time (and the only
    one without DetectConfig.speaker_check).
    by_set: with test-set normalised columns as well.
    stream: the listener's judge of stream candidates (scripts/fit_stream.py); _whole: fitted on spans judged
    whole (StreamConfig.span_vad_crop false)."""
    keyword_only = keyword_only or not cfg.detect.speaker_check
    parts = ["calibration", *(["stream"] if stream else []), *(["keyword"] if keyword_only else []),
             *([cfg.features.frontend] if cfg.features.frontend != "mfcc" else []),
             *([f"plus-{cfg.detect.second_frontend}"] if cfg.second_features() else []),
             *(["matcher"] if cfg.detect.matcher else []),
             *(["ewn"] if cfg.detect.word_embedding else []),
             *([f"voice-{cfg.detect.voiceprint}"] if cfg.detect.voiceprint != "ge2e" and not keyword_only else []),
             *(["nm"] if cfg.detect.noise_match else []),
             *([f"denoise-{cfg.stream.denoise}"] if stream and cfg.stream.denoise else []),
             *(["whole"] if stream and not cfg.stream.span_vad_crop else []),
             *(["set"] if by_set else [])]
    return "_".join(parts) + ".json"


@dataclass(frozen=True)
class Calibration:
    names: tuple[str, ...]          # score columns used, in order
    mean: tuple[float, ...]         # standardisation of each column
    std: tuple[float, ...]
    weights: tuple[float, ...]      # fusion weights on standardised columns (kws/training/fitting.fit_fusion)
    bias: float
    threshold: float                # fused score above this -> 1
    provenance: dict = field(default_factory=dict)
    # Each column is clipped to the range the fit saw (RANGE_PERCENTILES of the training rows): a
    # score far outside it (an identical synthetic voice, a freak distance) is not extrapolated, so
    # one column cannot carry a clip on its own. Empty: no clipping.
    lo: tuple[float, ...] = ()
    hi: tuple[float, ...] = ()
    # A stream calibration's running statistics start from these (recent.RecentPrior's fields); empty otherwise.
    recent: dict = field(default_factory=dict)
    # Groups of columns made together (detect.deferred_groups) and the most each group's weighed sum reached on
    # the training rows: fuse caps the sum there, so a group not yet made can add at most that (upper), far less
    # than every column at its own extreme at once. Empty: no caps.
    caps: tuple[tuple[tuple[str, ...], float], ...] = ()

    def fuse(self, scores: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Fused score of each row; `@set` columns are standardised over `reference` (default: these rows),
        which must then be the whole test folder's scores."""
        x = self._columns(scores, reference)
        if not self.caps:   # the one product, as every uncapped calibration was fitted and scored with
            return (x - np.array(self.mean)) / np.array(self.std) @ np.array(self.weights) + self.bias
        return self._capped(self._terms(x)) + self.bias

    def _terms(self, x: np.ndarray) -> np.ndarray:
        """(rows, names): each column's weighed part of the fused score."""
        return (x - np.array(self.mean)) / np.array(self.std) * np.array(self.weights)

    def _capped(self, terms: np.ndarray) -> np.ndarray:
        """The sum of each row's terms, each capped group's sum at most its cap."""
        grouped = np.zeros(len(self.names), bool)
        total = np.zeros(len(terms))
        for group, cap in self.caps:
            idx = [self.names.index(n) for n in group]
            grouped[idx] = True
            total += np.minimum(terms[:, idx].sum(axis=1), cap)
        return total + terms[:, ~grouped].sum(axis=1)

    def group_sums(self, scores: dict[str, np.ndarray], groups: list[tuple[str, ...]]) -> np.ndarray:
        """(rows, groups): each group's weighed sum, uncapped (what a cap is fitted on)."""
        terms = self._terms(self._columns(scores))
        return np.column_stack([terms[:, [self.names.index(n) for n in g]].sum(axis=1) for g in groups])

    def _columns(self, scores: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """(rows, names) of what fuse weighs: the columns in order, clipped to the fit's range (NaN stays NaN)."""
        scores = with_set_columns(scores, self.names, reference)
        x = np.column_stack([np.asarray(scores[n], np.float64) for n in self.names])
        return np.clip(x, self.lo, self.hi) if self.lo else x

    def upper(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        """The highest fused score each row can still reach: fuse, with each NaN (not yet known) column at
        its most favourable value in [lo, hi]. Unbounded (+inf) without lo and hi."""
        x = self._columns(scores)
        if not self.lo:
            return np.full(len(x), np.inf)
        lo, hi, m, s, w = map(np.array, (self.lo, self.hi, self.mean, self.std, self.weights))
        part = (x - m) / s * w
        most = np.maximum((lo - m) / s * w, (hi - m) / s * w)
        return self._capped(np.where(np.isnan(part), most, part)) + self.bias

    def decide(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        return (self.fuse(scores) > self.threshold).astype(int)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def for_config(cls, cfg: Config, keyword_only: bool = False, by_set: bool = False) -> "Calibration":
        """The committed calibration fitted for this configuration (see calibration_name)."""
        return cls.load(PRETRAINED_DIR / calibration_name(cfg, keyword_only, by_set))

    @classmethod
    def for_stream(cls, cfg: Config) -> "Calibration":
        """The listener's judge: the stream fit for its configuration (stream_config), else (none fitted) the plain one."""
        cfg = stream_config(cfg)
        path = PRETRAINED_DIR / calibration_name(cfg, stream=True)
        if path.exists():
            return cls.load(path)
        log.info("no %s: streams are judged by the clip calibration", path.name)
        return cls.for_config(cfg)

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        """A calibration file; which one a configuration uses is for_config's (calibration_name) alone."""
        path = Path(path)
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
            cal = cls(**{**d, **{k: tuple(d[k]) for k in ("names", "mean", "std", "weights", "lo", "hi") if k in d},
                         "caps": tuple((tuple(g), float(c)) for g, c in d.get("caps", ()))})
        except FileNotFoundError as e:
            raise WeightsError(f"{path} is missing; restore pretrained/ or run scripts/fit_calibration.py") from e
        except (ValueError, TypeError, KeyError) as e:
            raise WeightsError(f"{path}: damaged calibration ({e}); restore it from git") from e
        if not (len(cal.names) == len(cal.mean) == len(cal.std) == len(cal.weights)) or \
                (cal.lo and not len(cal.lo) == len(cal.hi) == len(cal.names)):
            raise WeightsError(f"{path}: calibration columns disagree in length; restore it from git")
        if not {n for g, _ in cal.caps for n in g} <= set(cal.names):
            raise WeightsError(f"{path}: a capped group names a column the calibration does not fuse; restore it from git")
        return cal


def folder_columns(name: str) -> tuple[str, str]:
    """The columns a score adds to a test-set normalised fit: <name>@set and <name>@top."""
    return f"{name}{SET_SUFFIX}", f"{name}{TOP_SUFFIX}"


def with_set_columns(scores: dict[str, np.ndarray], names: tuple[str, ...],
                     reference: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """scores plus the derived columns in names: each `<score>@set`, (x - mean) / std over reference's
    finite values, each `<score>@top`, (x - TOP_PERCENTILE of them) / std, and each product `<a>*<b>`
    (an interaction: a score whose weight depends on a condition, such as kw_z*cond_snr)."""
    out = dict(scores)
    factors = [f for n in names for f in n.split(PRODUCT)]
    for name in dict.fromkeys(factors):
        suffix = next((x for x in (SET_SUFFIX, TOP_SUFFIX) if name.endswith(x)), None)
        if suffix and name not in scores:
            base = name[: -len(suffix)]
            ref = np.asarray((reference or scores)[base], np.float64)
            ref = ref[np.isfinite(ref)]
            centre = (ref.mean() if suffix == SET_SUFFIX else np.percentile(ref, TOP_PERCENTILE)) if len(ref) else 0.0
            sd = ref.std() if len(ref) else 1.0
            out[name] = (np.asarray(scores[base], np.float64) - centre) / (sd + 1e-3)
    for name in names:
        if PRODUCT in name and name not in out:
            out[name] = np.prod([np.asarray(out[f], np.float64) for f in name.split(PRODUCT)], axis=0)
    return out


def base_columns(names: tuple[str, ...]) -> set[str]:
    """The score columns that names are derived from (products split, @set and @top removed)."""
    return {f.removesuffix(SET_SUFFIX).removesuffix(TOP_SUFFIX) for n in names for f in n.split(PRODUCT)}


def use_set_norm(plain_margin: np.ndarray, cfg: DetectConfig) -> bool:
    """Whether a folder looks like the platform's, so test-set normalisation may decide: enough
    scored clips, and the plain calibration finds few positives among them."""
    ok = plain_margin[np.isfinite(plain_margin)]
    return cfg.set_norm and len(ok) >= cfg.set_min_files and float((ok > 0).mean()) <= cfg.set_max_positive
