"""The prediction file from the first instant (D1, D2, D18) and names that cannot break it (D3, D4)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run

from kws.harness.metrics import bad_line, parse_predictions
from kws.safefile import atomic_write, line_safe, prediction_wavs, write_safe_predictions

BAD_NAMES = ["tab\there.wav", "new\nline.wav", "carriage\rreturn.wav", "form\x0cfeed.wav"]


def official_style_read(path: Path) -> dict[str, int]:
    """How the challenge's scorer reads a prediction file: line by line, stripped, split at the TAB."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                name, label = line.strip().split("\t")
                out[name] = int(label)
    return out


def odd_names(d: Path, wav: bytes) -> list[str]:
    """Good names (a file named exactly '.wav' among them) and bad ones; returns the good ones."""
    d.mkdir(parents=True, exist_ok=True)
    good = ["a.wav", ".wav", "B.WAV", "é ü.wav"]
    for n in good + BAD_NAMES:
        (d / n).write_bytes(wav)
    with open(os.fsencode(d) + b"/latin\xe9.wav", "wb") as f:   # a name that is not valid UTF-8
        f.write(wav)
    return good


def test_bad_names_are_skipped_and_every_other_file_gets_a_legal_line(enrolled, tiny_task, tmp_path):
    wav = next((tiny_task / "data" / "S001" / "test").iterdir()).read_bytes()
    good = odd_names(tmp_path / "odd", wav)
    out = tmp_path / "pred.txt"
    r = run("predict.sh", tmp_path / "odd", enrolled, out)
    assert r.returncode == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    assert bad_line(text) == "" and set(parse_predictions(text)) == set(good)
    assert set(official_style_read(out)) == set(good)
    assert r.stderr.count("skipped (rename the file)") == len(BAD_NAMES) + 1


def test_parse_predictions_names_the_bad_line():
    assert parse_predictions("a.wav\t0\nb\tc.wav\t1\n") is None
    assert bad_line("a.wav\t0\nb\tc.wav\t1\n").startswith("line 2 ")
    assert bad_line("a.wav\t0\n") == ""


def test_line_safe():
    assert line_safe("a b.wav") and line_safe(".wav")
    assert not any(line_safe(n) for n in BAD_NAMES + ["\udce9.wav", " "])


def test_first_write_keeps_permissions_and_follows_umask(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x.wav").write_bytes(b"")
    old = tmp_path / "old.txt"
    old.write_text("garbage")
    old.chmod(0o644)
    write_safe_predictions(tmp_path / "t", old)
    assert old.read_text() == "x.wav\t0\n" and old.stat().st_mode & 0o777 == 0o644
    mask = os.umask(0o022)
    try:
        write_safe_predictions(tmp_path / "t", tmp_path / "new.txt")
    finally:
        os.umask(mask)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o644
    atomic_write(tmp_path / "new.txt", "y")
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o644 and not list(tmp_path.glob(".*tmp"))


def test_file_named_dot_wav_is_listed(tmp_path):
    (tmp_path / ".wav").write_bytes(b"")
    assert [p.name for p in prediction_wavs(tmp_path)] == [".wav"]


def test_complete_file_before_heavy_imports(tmp_path):
    """The all-0 file replaces a stale one before numpy is imported (D1): a kill after that leaves it whole."""
    (tmp_path / "t").mkdir()
    for i in range(3):
        (tmp_path / "t" / f"{i}.wav").write_bytes(b"")
    out = tmp_path / "p.txt"
    out.write_text("garbage\n")
    probe = ("import sys, kws.safefile as s, kws.app.cli as c; s.write_predictions = (lambda w: lambda *a: "
             "(w(*a), print('numpy' in sys.modules, open(a[0]).read().count('\\t0'), flush=True), sys.exit(0)))"
             "(s.write_predictions); sys.exit(c.main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", probe, "predict", str(tmp_path / "t"), str(tmp_path / "w"), str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.stdout.split() == ["False", "3"], r.stdout + r.stderr


@pytest.mark.parametrize("value", ["0", "nan", "soon", "inf", "-5", "3600"])
def test_unusable_deadline_is_refused_after_the_safe_file(enrolled, tiny_task, tmp_path, value):
    out = tmp_path / "p.txt"
    r = run("predict.sh", tiny_task / "data" / "S001" / "test", enrolled, out, env={"KWS_DEADLINE": value})
    assert r.returncode == 2 and "KWS_DEADLINE" in r.stderr and "epoch seconds" in r.stderr
    assert set(parse_predictions(out.read_text()).values()) == {0} and len(parse_predictions(out.read_text())) == 8


def test_prediction_file_named_like_an_option(enrolled, tiny_task, tmp_path):
    r = run("predict.sh", tiny_task / "data" / "S001" / "test", enrolled, "-p.txt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(parse_predictions((tmp_path / "-p.txt").read_text())) == 8


def test_missing_test_dir_replaces_a_stale_file(enrolled, tmp_path):
    out = tmp_path / "p.txt"
    out.write_text("stale\tgarbage\n")
    r = run("predict.sh", tmp_path / "nope", enrolled, out)
    assert r.returncode == 2 and "nope: not a directory" in r.stderr and "Traceback" not in r.stderr
    assert out.read_text() == ""


def test_scores_side_file_is_replaced_atomically(enrolled, tiny_task, tmp_path):
    from kws.app.commands import SCORES_FILE
    before = (enrolled / SCORES_FILE).stat().st_ino if (enrolled / SCORES_FILE).exists() else None
    run("predict.sh", tiny_task / "data" / "S001" / "test", enrolled, tmp_path / "p.txt")
    assert (enrolled / SCORES_FILE).stat().st_ino != before    # a rename, not a write in place


def first_write(test_dir: Path, out: Path) -> None:
    """predict.sh's bash first step alone."""
    body = (ROOT / "predict.sh").read_text().split("first_write \"$1\"")[0]
    subprocess.run(["bash", "-c", body + '\nfirst_write "$1" "$2"', "x", str(test_dir), str(out)], check=True)


def test_bash_first_write_matches_python_or_leaves_it(tmp_path):
    t = tmp_path / "t"
    t.mkdir()
    for n in ("a.wav", "B.WAV", ".wav", "x y.wav", "notes.txt"):
        (t / n).write_bytes(b"")
    (t / "dir.wav").mkdir()
    first_write(t, tmp_path / "bash.txt")
    write_safe_predictions(t, tmp_path / "py.txt")
    assert (tmp_path / "bash.txt").read_bytes() == (tmp_path / "py.txt").read_bytes()
    (t / "é.wav").write_bytes(b"")            # not plain ASCII: bash leaves the file to kws.safefile
    first_write(t, tmp_path / "bash2.txt")
    assert not (tmp_path / "bash2.txt").exists() and not list(tmp_path.glob(".*.tmp"))
