"""scripts/held_out_language.sh: the front-end choices it can measure, refused before anything is built."""
import subprocess

import pytest

from conftest import ROOT


@pytest.mark.parametrize("args, says", [
    (["encoder", "pncc"], "FRONTEND: mfcc or mfcc-ns"),
    (["wav2vec", "mfcc"], "SECOND: encoder or gse"),
    (["gse", "mfcc-ns"], "fitted with SECOND encoder only"),   # fit_calibrations.sh fits mfcc-ns beside the encoder
    (["encoder", "mfcc", "trunk"], "VOICEPRINT: both or encoder"),
    (["gse", "mfcc", "both"], "VOICEPRINT both is fitted with mfcc and encoder only"),
])
def test_a_front_end_it_cannot_fit_is_refused_before_any_work(tmp_path, args, says):
    work = tmp_path / "held"
    r = subprocess.run(["bash", str(ROOT / "scripts" / "held_out_language.sh"), "ar", str(work), "7", *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and says in r.stderr
    assert not work.exists()


def test_every_front_end_it_takes_has_its_calibrations_fitted():
    """Each FRONTEND-SECOND pair names a table kind and calibrations that fit_calibrations.sh fits."""
    sh = (ROOT / "scripts" / "held_out_language.sh").read_text()
    fits = (ROOT / "scripts" / "fit_calibrations.sh").read_text()
    for pair, table, infix in [("mfcc-encoder", "encoder", "plus-encoder"), ("mfcc-gse", "gseplus", "plus-gse"),
                               ("mfcc-ns-encoder", "ns", "mfcc-ns_plus-encoder")]:
        assert f"{pair}) table={table} infix={infix} ;;" in sh
        for name in (f"calibration_keyword_{infix}", f"calibration_{infix}_voice-encoder"):
            assert any(line.split()[1:3] == [name, table] for line in fits.splitlines() if line.startswith("fit ")), name
    # VOICEPRINT both: its own table, bothplus, beside the encoder table that the keyword tier is fitted from
    assert '--voiceprint both --out "$work/tables/bothplus-1.tsv"' in sh
    assert any(line.split()[1:3] == ["calibration_plus-encoder_voice-both", "bothplus"] for line in fits.splitlines())
