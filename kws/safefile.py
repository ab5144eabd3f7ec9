"""Files that are whole from the first instant: atomic writes that keep permissions, the test-wav listing
and the all-0 prediction file. Standard library only.

`python -m kws predict` calls `write_safe_predictions` before numpy or any model is imported, so a kill
a few milliseconds after start already finds a complete, legal prediction file, and a stale or garbage
file from an earlier run is replaced at once.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

# The column separator and every character that some line reader ends a line at (str.splitlines,
# universal newlines): a file name holding one cannot be written as one legal `<name>\t<0|1>` line.
LINE_BREAKERS = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def line_safe(name: str) -> bool:
    """True if `name` can be the first column of a `<name>\\t<0|1>` line that every reader parses."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:   # bytes that are not UTF-8 (os.listdir hands them over as surrogates)
        return False
    return bool(name.strip()) and not LINE_BREAKERS.intersection(name)


def printable(name: str) -> str:
    """A file name for a log line, whatever bytes it holds."""
    return ascii(name) if not line_safe(name) else name


def is_wav_name(name: str) -> bool:
    return name.lower().endswith(".wav")   # a file named exactly ".wav" too (Path(".wav").suffix is "")


def list_wavs(folder: str | Path) -> list[Path]:
    """The .wav files of a folder, sorted by name; anything else is ignored with a log line.

    Raises NotADirectoryError (an OSError) naming the folder when it is not a readable directory."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a directory")
    wavs, other = [], []
    with os.scandir(folder) as it:
        for e in it:
            try:
                ok = is_wav_name(e.name) and e.is_file()
            except OSError:
                ok = False
            (wavs if ok else other).append(e.name)
    if other:
        log.warning("%s: ignoring %d non-wav entries (e.g. %s)", folder, len(other), printable(sorted(other)[0]))
    return [folder / n for n in sorted(wavs)]


def prediction_wavs(folder: str | Path) -> list[Path]:
    """list_wavs without the files whose names cannot be written as one legal line (TAB, CR, LF, bytes
    that are not UTF-8): each is logged and gets no line, so that every other file keeps its own."""
    wavs = list_wavs(folder)
    bad = [p for p in wavs if not line_safe(p.name)]
    for p in bad:
        log.warning("%s: its name holds a TAB, a line break or bytes that are not UTF-8, so no legal "
                    "prediction line can name it; skipped (rename the file)", printable(p.name))
    return [p for p in wavs if line_safe(p.name)]


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-1 of a file, read in chunks (a 30-minute take is never held whole)."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _mode(path: Path) -> int:
    """The permission bits an atomic rewrite should give: those of the file it replaces, else the umask's."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write via a temporary file in the same folder and one rename: readers see the old file or the new one,
    never half of one. Keeps the permission bits of an existing file (mkstemp alone would give 0600)."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _mode(path))
            f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_predictions(path: str | Path, names: list[str], decisions: list[int]) -> None:
    """`<name>\\t<0|1>` lines, atomically."""
    atomic_write(path, "".join(f"{n}\t{int(d)}\n" for n, d in zip(names, decisions)))


def write_safe_predictions(test_dir: str | Path, out_file: str | Path) -> list[Path]:
    """List the test wavs and write the complete all-0 prediction file; returns the wavs that got a line."""
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    try:
        paths = prediction_wavs(test_dir)
    except OSError:
        write_predictions(out_file, [], [])   # no folder to list: at least no stale file stays
        raise
    write_predictions(out_file, [p.name for p in paths], [0] * len(paths))
    return paths
