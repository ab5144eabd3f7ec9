"""The noise rule, in one place: training and calibration never hear the dev-set noise.

../shared/data/noise (Speech Commands background noise) is reserved for building dev task sets, so
that dev measures noise types the system has never met. Every script that mixes noise into training
or calibration audio passes its folder through check_training_noise.
"""
from __future__ import annotations

from pathlib import Path

TRAIN_NOISE_DIR = "build/train-noise"     # scripts/build_train_noise.py's output: the default everywhere
RESERVED_NOISE = ("data", "noise")        # the last two parts of the dev-only noise folder


def check_training_noise(folder: str | Path) -> Path:
    """folder, resolved, if training may use it; SystemExit naming the rule if it is the dev-only noise."""
    path = Path(folder).resolve()
    if path.parts[-2:] == RESERVED_NOISE or (path / "dude_miaowing.flac").is_file():
        raise SystemExit(f"{folder}: this is the dev-only noise (../shared/data/noise); training and calibration "
                         f"use {TRAIN_NOISE_DIR} (scripts/build_train_noise.py) or ../shared/data/noise-train")
    if not path.is_dir():
        raise SystemExit(f"{folder}: no such noise folder; build it with scripts/build_train_noise.py")
    return path
