"""Task sets for a first run with no data given.

- ``shipped`` (the default): demo/ in the repository, four tasks of real dev-split recordings
  stored as Ogg/Opus (scripts/make_demo_set.py), decoded here into the official layout. Needs
  only soundfile: no ../shared, no espeak-ng, no network.
- ``dev``: ../shared/tools/make_tasks.py over the dev split of ../shared/data/words.
- ``espeak``: synthetic voices from scripts/make_espeak_tasks.py (needs espeak-ng).

The two builders are offline scripts run as child processes (kws never imports scripts/).
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from kws.config import REPO_ROOT
from kws.errors import KwsError
from kws.app.progress import progress

log = logging.getLogger(__name__)

SHARED = REPO_ROOT.parent / "shared"
DEMO_DIR = REPO_ROOT / "demo"
OPUS_SUFFIX = ".opus"
SOURCES = ("shipped", "dev", "espeak")


def demo_task_set(out: Path, source: str = "shipped") -> Path:
    """Build (once) and return a folder with data/, solution/ and test_meta.tsv."""
    out = out.resolve()
    if (out / "solution").is_dir() and any((out / "solution").iterdir()):
        log.info("reusing demo task set in %s", out)
        return out
    if source == "shipped":
        return decode_shipped(DEMO_DIR, out)
    if source == "dev":
        words, noise = SHARED / "data" / "words", SHARED / "data" / "noise"
        if not (words / "manifest.tsv").is_file() or not (SHARED / "tools" / "make_tasks.py").is_file():
            raise KwsError(f"--demo dev needs {words} and {SHARED / 'tools' / 'make_tasks.py'}")
        log.info("building the dev task set from real recordings in %s (one task per dev speaker)", words)
        cmd = [sys.executable, str(SHARED / "tools" / "make_tasks.py"), "--words", str(words), "--split", "dev",
               "--noise", str(noise), "--out", str(out), "--per-speaker", "1"]
    elif source == "espeak":
        if shutil.which("espeak-ng") is None:
            raise KwsError("--demo espeak needs espeak-ng (apt-get install espeak-ng); the default, "
                           "--demo shipped, needs nothing")
        log.info("synthesising a demo task set with espeak-ng voices")
        cmd = [sys.executable, str(REPO_ROOT / "scripts" / "make_espeak_tasks.py"), "--out", str(out)]
    else:
        raise KwsError(f"unknown demo source {source!r}; use one of {', '.join(SOURCES)}")
    # The child imports kws: from this checkout, whichever Python runs it.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    subprocess.run(cmd, check=True, env=env)
    return out


def decode_shipped(src: Path, out: Path) -> Path:
    """demo/ (Opus clips) -> the official layout: 16 kHz 16-bit WAV, labels, test_meta.tsv."""
    try:
        import soundfile as sf
    except ImportError as e:
        raise KwsError("the shipped demo is stored as Opus and needs soundfile: run ./initialize.sh, then "
                       ".venv/bin/python run_local_test.py") from e
    clips = sorted((src / "data").rglob(f"*{OPUS_SUFFIX}"))
    if not clips or not (src / "solution").is_dir():
        raise KwsError(f"{src}: the shipped demo task set is missing; restore demo/ from git")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for clip in progress(clips, "demo: decoding clips"):
        y, sr = sf.read(clip, dtype="float32")
        dst = tmp / clip.relative_to(src).with_suffix(".wav")
        dst.parent.mkdir(parents=True, exist_ok=True)
        sf.write(dst, y, sr, subtype="PCM_16")
    shutil.copytree(src / "solution", tmp / "solution")
    for name in ("tasks.tsv", "test_meta.tsv"):
        if (src / name).is_file():
            shutil.copy(src / name, tmp / name)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    log.info("demo: %d tasks of real recordings (demo/README.md) in %s", len(list((out / "data").iterdir())), out)
    return out
