"""scripts/eval_stream.py: the candidate record the stream judge is fitted on."""
import csv
from types import SimpleNamespace

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
