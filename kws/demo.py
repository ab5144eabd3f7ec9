"""A task set for a first run with no data given: real dev recordings when ../shared is there, else espeak-ng.

Both builders are offline scripts run as child processes (kws never imports scripts/).
"""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from .config import REPO_ROOT

log = logging.getLogger(__name__)

SHARED = REPO_ROOT.parent / "shared"


def demo_task_set(out: Path) -> Path:
    """Build (once) and return a folder with data/, solution/ and test_meta.tsv."""
    out = out.resolve()
    if (out / "solution").is_dir() and any((out / "solution").iterdir()):
        log.info("reusing demo task set in %s", out)
        return out
    words, noise = SHARED / "data" / "words", SHARED / "data" / "noise"
    if (words / "manifest.tsv").is_file() and (SHARED / "tools" / "make_tasks.py").is_file():
        print(f"demo: building the dev task set from real recordings in {words} (one task per dev speaker)")
        cmd = [sys.executable, str(SHARED / "tools" / "make_tasks.py"), "--words", str(words), "--split", "dev",
               "--noise", str(noise), "--out", str(out), "--per-speaker", "1"]
    else:
        print(f"demo: {SHARED} not found; synthesising a demo task set with espeak-ng voices instead")
        cmd = [sys.executable, str(REPO_ROOT / "scripts" / "make_espeak_tasks.py"), "--out", str(out)]
    subprocess.run(cmd, check=True)
    return out
