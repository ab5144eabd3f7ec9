import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth import SR, utterance  # noqa: E402


def write(path: Path, y: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sr, subtype=subtype)
    return path


@pytest.fixture(scope="session")
def tiny_task(tmp_path_factory) -> Path:
    """One speaker, wake word 'alpha delta': 5 enrollment takes, 3 positives, 5 negatives."""
    root = tmp_path_factory.mktemp("tiny_task")
    spk = root / "data" / "S001"
    for i in range(5):
        write(spk / "enroll" / f"S001E{i + 1:03d}.wav", utterance(["alpha", "delta"], seed=i))
    tests = [(["alpha", "delta"], 120, 1.0, 1), (["bravo", "alpha", "delta"], 120, 1.0, 1),
             (["alpha", "delta", "omega"], 120, 1.0, 1), (["bravo"], 120, 1.0, 0), (["omega", "bravo"], 120, 1.0, 0),
             (["delta", "omega"], 120, 1.0, 0), (["bravo", "omega", "bravo"], 200, 1.15, 0), (["omega"], 200, 1.15, 0)]
    labels = []
    for n, (words, f0, scale, label) in enumerate(tests, 1):
        name = f"S001T{n:04d}.wav"
        write(spk / "test" / name, utterance(words, f0, scale, seed=100 + n, noise_db=-45))
        labels.append(f"{name}\t{label}\n")
    (root / "solution").mkdir()
    (root / "solution" / "S001_test_labels.txt").write_text("".join(labels))
    return root


@pytest.fixture(scope="session")
def personal_profile(tiny_task, tmp_path_factory) -> Path:
    """A person's PROFILE_DIR with the phrase 'alpha-delta' enrolled from tiny_task's five takes."""
    from kws.api import Profile
    folder = tmp_path_factory.mktemp("profile") / "me"
    Profile.enroll(folder, "alpha-delta", sorted((tiny_task / "data" / "S001" / "enroll").glob("*.wav")))
    return folder
