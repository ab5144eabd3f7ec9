"""What kws classify reads and writes: labelled training clips (a folder per class, or a labels file), the
unlabelled test clips, and prediction files (one per published model, each whole from the first instant).

A prediction file (PREDICTIONS_DIR/predictions-NNN.tsv):
    # elapsed_s=12.345 cv_nauc=0.8123 model=encoder trunk 2 (l2 0.01)
    file    label   <class 1>   <class 2> ...
    a.wav   bob     0.01        0.97 ...
`file` is the clip's path relative to the test folder; the class columns are probabilities.
"""
from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws.errors import UsageError
from kws.safefile import atomic_write

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aif", ".aiff")
_NAME = re.compile(r"predictions-(\d+)\.tsv$")


@dataclass(frozen=True)
class Labelled:
    paths: list[Path]
    labels: list[str]


def audio_files(folder: Path) -> list[Path]:
    """Every audio file under folder (recursively), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def read_training(data: str | Path | None, labels: str | Path | None) -> Labelled:
    """A folder with one sub-folder of clips per class, or a labels file of `path<TAB>label` lines (paths
    relative to --data if given, else to the labels file's folder). At least two classes."""
    if labels is not None:
        labels = Path(labels)
        root = Path(data) if data is not None else labels.parent
        pairs = read_pairs(labels)
        paths, names = [root / p for p, _ in pairs], [lab for _, lab in pairs]
    elif data is not None:
        data = Path(data)
        if not data.is_dir():
            raise UsageError(f"{data}: not a directory (give a folder per class, or --labels FILE)")
        paths, names = [], []
        for d in sorted(p for p in data.iterdir() if p.is_dir()):
            for p in audio_files(d):
                paths.append(p)
                names.append(d.name)
    else:
        raise UsageError("give --data TRAIN_DIR (a folder per class) or --labels FILE")
    if len(set(names)) < 2:
        raise UsageError(f"training data needs at least two classes; found {sorted(set(names)) or 'none'}")
    return Labelled(paths, names)


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """`path<TAB>label` lines (a training labels file, the evaluation's answer key); `#` lines and blank
    lines skipped; any other line without a label is an error naming it."""
    out = []
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2 or not row[1].strip():
                raise UsageError(f"{path}:{n}: expected path<TAB>label, got {row!r}")
            out.append((row[0], row[1].strip()))
    return out


def read_truth(path: str | Path) -> dict[str, str]:
    """The evaluation's answer key: file -> label."""
    return dict(read_pairs(path))


def write_predictions(path: Path, names: list[str], classes: list[str], proba: np.ndarray, **header: object) -> None:
    """One prediction file, atomically: a reader (or a kill) never meets half of one."""
    buf = io.StringIO()
    buf.write("# " + " ".join(f"{k}={v}" for k, v in header.items()) + "\n")
    w = csv.writer(buf, delimiter="\t", lineterminator="\n")
    w.writerow(["file", "label", *classes])
    for n, p in zip(names, proba):
        w.writerow([n, classes[int(np.argmax(p))], *(f"{v:.5f}" for v in p)])
    atomic_write(path, buf.getvalue())


@dataclass(frozen=True)
class Predictions:
    path: Path
    header: dict[str, str]
    classes: list[str]
    names: list[str]
    proba: np.ndarray

    @property
    def elapsed_s(self) -> float:
        return float(self.header.get("elapsed_s", "nan"))


def read_predictions(path: str | Path) -> Predictions:
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2 or not lines[0].startswith("#"):
        raise UsageError(f"{path}: not a kws classify prediction file")
    header = dict(kv.split("=", 1) for kv in re.findall(r"(\w+=(?:[^=]*?))(?=\s\w+=|$)", lines[0][1:].strip()))
    rows = list(csv.reader(lines[1:], delimiter="\t"))
    classes = rows[0][2:]
    names = [r[0] for r in rows[1:]]
    proba = np.array([[float(v) for v in r[2:]] for r in rows[1:]], float).reshape(len(names), len(classes))
    return Predictions(path, header, classes, names, proba)


def prediction_files(folder: str | Path) -> list[Path]:
    """The prediction files of a folder in the order they were written."""
    folder = Path(folder)
    found = [(int(m.group(1)), p) for p in folder.glob("predictions-*.tsv") if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def prediction_path(folder: Path, index: int) -> Path:
    return folder / f"predictions-{index:03d}.tsv"
