"""The challenge metric: miss rate + alpha * false-alarm rate per speaker, averaged over speakers.

Standard library only, so the local platform can score without the model's dependencies.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

ALPHA = 9.0


def task_score(labels: Sequence[int], preds: Sequence[int], alpha: float = ALPHA) -> tuple[float, float, float]:
    """(score, MR, FAR) of one speaker's predictions; a task with no positives has MR 0."""
    pos = [int(p) for y, p in zip(labels, preds) if int(y) == 1]
    neg = [int(p) for y, p in zip(labels, preds) if int(y) == 0]
    mr = sum(1 - p for p in pos) / len(pos) if pos else 0.0
    far = sum(neg) / len(neg) if neg else 0.0
    return mr + alpha * far, mr, far


@dataclass
class SpeakerResult:
    speaker: str
    score: float
    mr: float
    far: float
    error: str = ""                                        # why the speaker scored 1.0, when it did
    misses: list[str] = field(default_factory=list)        # file names
    false_alarms: list[str] = field(default_factory=list)


def _parse(text: str) -> tuple[dict[str, int], str]:
    """(predictions, '' or what is wrong with the first illegal line, naming it)."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rstrip("\r").split("\t")
        if len(parts) != 2 or parts[1].strip() not in ("0", "1") or not parts[0].strip():
            return out, f"line {n} is not '<file>\\t<0|1>': {line[:200]!r}"
        out[parts[0].strip()] = int(parts[1])
    return out, ""


def parse_predictions(text: str) -> dict[str, int] | None:
    """`<file>\\t<0|1>` lines -> dict; None if any line is illegal (the platform then scores 1.0)."""
    out, bad = _parse(text)
    return None if bad else out


def bad_line(text: str) -> str:
    """'' for a legal predictions or labels text, else which line is illegal and how it reads."""
    return _parse(text)[1]


def parse_labels(text: str) -> dict[str, int]:
    labels, bad = _parse(text)
    if bad:
        raise ValueError(f"malformed labels file: {bad}")
    return labels


def score_speaker(speaker: str, labels: dict[str, int], predictions: dict[str, int] | None,
                  error: str = "", alpha: float = ALPHA) -> SpeakerResult:
    """Platform rule: a missing or illegal prediction for any labelled file makes the score 1.0."""
    if predictions is None:
        return SpeakerResult(speaker, 1.0, 1.0, 0.0, error or "prediction file missing or illegal")
    missing = [f for f in sorted(labels) if f not in predictions]
    if missing:
        return SpeakerResult(speaker, 1.0, 1.0, 0.0, f"{len(missing)} file(s) without a prediction, e.g. {missing[0]}")
    names = sorted(labels)
    y = [labels[n] for n in names]
    p = [predictions[n] for n in names]
    s, mr, far = task_score(y, p, alpha)
    return SpeakerResult(speaker, s, mr, far, error,
                         [n for n, a, b in zip(names, y, p) if a == 1 and b == 0],
                         [n for n, a, b in zip(names, y, p) if a == 0 and b == 1])


def average(results: list[SpeakerResult]) -> float:
    return sum(r.score for r in results) / len(results) if results else float("nan")


SNR_BUCKETS = (("clean", None), (">=20 dB", 20.0), ("10-20 dB", 10.0), ("<10 dB", float("-inf")))


def snr_bucket(snr: float | None) -> str:
    """The bucket of a test clip by the SNR of the noise added to it (None: no noise added)."""
    if snr is None:
        return "clean"
    return next(name for name, lo in SNR_BUCKETS[1:] if snr >= lo)


def misses_by_snr(results: list[SpeakerResult], positive_snr: dict[tuple[str, str], float | None]) -> dict[str, dict]:
    """Per SNR bucket: positives, misses and miss rate; positive_snr: (task, file) -> SNR of every positive."""
    missed = {(r.speaker, f) for r in results for f in r.misses}
    speakers = {r.speaker for r in results}
    out = {name: {"positives": 0, "misses": 0} for name, _ in SNR_BUCKETS}
    for key, snr in positive_snr.items():
        if key[0] in speakers:
            b = out[snr_bucket(snr)]
            b["positives"] += 1
            b["misses"] += key in missed
    for b in out.values():
        b["miss_rate"] = round(b["misses"] / b["positives"], 4) if b["positives"] else None
    return out


def errors_by_kind(results: list[SpeakerResult], kinds: dict[tuple[str, str], str]) -> dict[str, Counter]:
    """Misses and false alarms counted by the clip kind of test_meta.tsv ((task, file) -> kind)."""
    out = {"misses": Counter(), "false_alarms": Counter()}
    for r in results:
        for key, files in (("misses", r.misses), ("false_alarms", r.false_alarms)):
            out[key].update(kinds.get((r.speaker, f), "unknown") for f in files)
    return out
