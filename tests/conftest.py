import subprocess
from pathlib import Path

import kws  # the installed package (pip install -e .[dev]; ./initialize.sh --dev does)

ROOT = Path(__file__).resolve().parent.parent

kws.limit_blas_threads()   # as `python -m kws` does, before numpy loads

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

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


def run(script: str, *args, cwd=None, code: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a platform script as the platform does: bash, a fresh process, any working directory."""
    import os
    return subprocess.run(["bash", str(code / script), *map(str, args)], cwd=cwd or "/", capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def enrolled(tiny_task, tmp_path_factory) -> Path:
    """WORK_DIR of the tiny task's speaker, enrolled by enrollment.sh."""
    work = tmp_path_factory.mktemp("work")
    r = run("enrollment.sh", tiny_task / "data" / "S001" / "enroll", work)
    assert r.returncode == 0, r.stderr
    assert (work / "profile.npz").is_file()
    return work


def predictions_for(test_dir: Path, work: Path, tmp_path: Path, **kw) -> tuple[dict, subprocess.CompletedProcess]:
    """Run predict.sh; check the file is legal with one line per test wav; return (predictions, process)."""
    from kws.harness.metrics import parse_predictions
    out = tmp_path / "pred.txt"
    r = run("predict.sh", test_dir, work, out, **kw)
    preds = parse_predictions(out.read_text(encoding="utf-8"))
    assert preds is not None, "illegal prediction file"
    wavs = {p.name for p in test_dir.iterdir() if p.is_file() and p.suffix.lower() == ".wav"}
    assert set(preds) == wavs, "prediction file must have exactly one line per test wav"
    return preds, r


@pytest.fixture(scope="session")
def personal_profile(tiny_task, tmp_path_factory) -> Path:
    """A person's PROFILE_DIR with the phrase 'alpha-delta' enrolled from tiny_task's five takes."""
    from kws.app.api import Profile
    folder = tmp_path_factory.mktemp("profile") / "me"
    Profile.enroll(folder, "alpha-delta", sorted((tiny_task / "data" / "S001" / "enroll").glob("*.wav")))
    return folder
