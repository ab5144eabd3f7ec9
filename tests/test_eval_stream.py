"""scripts/eval_stream.py: the candidate record the stream judge is fitted on."""
import csv
import sys
from types import SimpleNamespace

import pytest

import eval_stream as es
from kws.scoring.spotter import Candidate


def test_record_keeps_columns_only_some_candidates_have(tmp_path):
    # The speaker veto scores only accepted candidates: its `veto` column first appears on a later row.
    trace = [(Candidate("hi", 0, 49, 1.2), -3.0, {"kw_z": 0.5}),
             (Candidate("hi", 100, 149, 2.5), 1.0, {"kw_z": 2.0, "veto": 1.7})]
    truth = [{"start": 2.0, "end": 3.0, "kind": "positive"}]
    path = tmp_path / "rec.tsv"
    es.write_record(path, SimpleNamespace(step=320, trace=trace), truth)
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [r["veto"] for r in rows] == ["", "1.7"]
    assert [r["kind"] for r in rows] == ["pause", "positive"] and rows[1]["truth_start"] == "2.0"


def test_a_missing_truth_file_stops_the_run_before_the_stream_is_scored(tmp_path, monkeypatch, capsys):
    # The profile does not exist either: the truth check has to come before the detector is built.
    monkeypatch.setattr(sys, "argv", ["eval_stream.py", "--profile", str(tmp_path / "p"),
                                      "--stream", str(tmp_path / "s.flac")])
    with pytest.raises(SystemExit):
        es.main()
    err = capsys.readouterr().err
    assert "no truth file" in err and "s.tsv" in err
