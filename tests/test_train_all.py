"""scripts/train_all.sh and the fit_calibrations.sh switch it uses: arguments refused before any work, and the
default's keyword tier fitted from the bothplus tables that train_all.sh scores."""
import os
import subprocess
import sys

from conftest import ROOT


def test_an_unknown_argument_is_refused_before_any_work(tmp_path):
    work = tmp_path / "all"
    r = subprocess.run(["bash", str(ROOT / "scripts" / "train_all.sh"), str(work), "--lisener"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown argument --lisener" in r.stderr
    assert not work.exists()


def fits(tmp_path, **env) -> str:
    """fit_calibrations.sh's fit_calibration.py calls (through a stand-in python that only logs them)."""
    log = tmp_path / "calls.log"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/bash\nif [ "$1" = -m ]; then exec {sys.executable} "$@"; fi\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    for kind in ("encoder", "bothplus"):
        (tmp_path / f"{kind}-1.tsv").write_text("")
    subprocess.run(["bash", str(ROOT / "scripts" / "fit_calibrations.sh"), str(tmp_path)], check=True, timeout=120,
                   env={**os.environ, "PYTHON": str(fake), "ONLY": "^calibration_keyword_plus-encoder$", **env})
    return log.read_text()


def test_the_keyword_tier_reads_the_tables_it_is_told_to(tmp_path):
    assert f"--scores {tmp_path}/encoder-1.tsv " in fits(tmp_path)
    (tmp_path / "calls.log").unlink()
    got = fits(tmp_path, TABLES_AS="encoder=bothplus")
    assert got.count(f"--scores {tmp_path}/bothplus-1.tsv ") == 2 and "encoder-1.tsv" not in got   # plain and _set


def test_a_seed_must_be_a_number(tmp_path):
    work = tmp_path / "all"
    r = subprocess.run(["bash", str(ROOT / "scripts" / "train_all.sh"), str(work), "--seed", "two"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--seed takes a number" in r.stderr
    assert not work.exists()
