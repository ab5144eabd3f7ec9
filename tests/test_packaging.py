"""`pip install .` as a user gets it: the kws command and package, pretrained/ inside, runtime deps only."""
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT

from kws.harness.metrics import parse_predictions

pytestmark = pytest.mark.e2e   # runs the platform scripts, the CLI or a build in subprocesses


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package built from a copy of the sources (the build writes into its source folder), installed into a
    folder of its own; its dependencies are this venv's."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    for name in ("kws", "pretrained"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--target", str(tmp / "site"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return tmp / "site"


def run_installed(site: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([str(site / "bin" / "kws"), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_runtime_dependencies_only():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip() for d in meta["dependencies"]}
    assert names == {"numpy", "scipy", "soundfile", "webrtcvad-wheels"}
    assert {"torch", "torchaudio", "speechbrain", "pyroomacoustics"} <= \
        {d.split("=")[0].split(">")[0] for d in meta["optional-dependencies"]["train"]}
    assert meta["scripts"]["kws"] == "kws.app.cli:main"


def test_installed_package_carries_pretrained_and_nothing_else(installed):
    files = {p.name for p in (installed / "kws" / "pretrained").iterdir()}
    assert {p.name for p in (ROOT / "pretrained").iterdir() if p.is_file()} <= files
    assert not (installed / "demo").exists() and not (installed / "scripts").exists()
    r = subprocess.run([sys.executable, "-c", "import kws.config as c; print(c.PRETRAINED_DIR)"], cwd="/",
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(installed)})
    assert Path(r.stdout.strip()) == installed / "kws" / "pretrained"


def test_installed_command_enrolls_detects_and_predicts(installed, tiny_task, tmp_path):
    """Run outside any checkout: everything it needs comes with the package."""
    spk = tiny_task / "data" / "S001"
    assert run_installed(installed, "--help", cwd=tmp_path).returncode == 0
    r = run_installed(installed, "check", cwd=tmp_path)
    assert r.returncode == 0 and "artefacts OK" in r.stderr, r.stderr
    r = run_installed(installed, "enroll", "--name", "ad", "--out", tmp_path / "me", *sorted(spk.glob("enroll/*.wav")),
                      cwd=tmp_path)
    assert r.returncode == 0 and "enrolled 'ad'" in r.stdout, r.stderr
    r = run_installed(installed, "detect", tmp_path / "me", spk / "test" / "S001T0001.wav", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_installed(installed, "enroll", spk / "enroll", tmp_path / "work", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_installed(installed, "predict", spk / "test", tmp_path / "work", tmp_path / "p.txt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(parse_predictions((tmp_path / "p.txt").read_text())) == 8


def test_setup_refuses_what_it_cannot_use(tmp_path):
    r = subprocess.run(["bash", str(ROOT / "scripts" / "setup_venv.sh"), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr
    r = subprocess.run(["bash", str(ROOT / "scripts" / "setup_venv.sh")], capture_output=True, text=True,
                       env={**os.environ, "KWS_VENV": str(tmp_path)})
    assert r.returncode == 1 and "not a complete kws environment" in r.stderr


def test_scripts_import_the_installed_package_without_patching_sys_path():
    """Scripts run against the installed kws (editable in .venv), never a sys.path they patch themselves."""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    patched = [p.name for p in sorted((root / "scripts").glob("*.py")) if "sys.path" in p.read_text(encoding="utf-8")]
    assert patched == []
