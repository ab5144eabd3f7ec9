"""scripts/stream_bench.py: which voices a bench is built from."""
import numpy as np
import pytest
import stream_bench as sb
from word_corpus import split_speakers

HEAD = "path\tsplit\tcorpus\tspeaker\tword\tlang\trep\tseconds\tlicence\n"


def manifest(root, rows):
    (root / "manifest.tsv").write_text(HEAD + "".join(f"{spk}/{w}.flac\t{split}\t{spk.split('_')[0]}\t{spk}\t{w}\ten\t1\t1.0\tx\n"
                                                      for split, spk, w in rows), encoding="utf-8")
    return root


def test_unheard_voices_are_the_calibration_half_of_train_and_all_of_dev(tmp_path):
    train = [f"asc_{k}" for k in range(4)] + [f"dsp20_{k}" for k in range(3)]
    rows = [("train", s, w) for s in [*train, "gsc_a", "gsc_b"] for w in ("up", "go")] + \
           [("dev", s, "up") for s in ("asc_9", "dsp20_9")]
    folder = manifest(tmp_path, rows)
    words = sb.Words(folder, "train")
    heard_not = sb.unheard(words)
    assert heard_not == set(split_speakers(train)[1]) and len(heard_not) == 3
    assert not heard_not & set(split_speakers(train)[0]) and not any(s.startswith("gsc") for s in heard_not)
    words.keep(heard_not)
    assert set(words.speakers) == heard_not and {s for s, _ in words.clips} == heard_not
    assert sb.unheard(sb.Words(folder, "dev")) == {"asc_9", "dsp20_9"}


def result(task, hits, fa=0, other=0, positives=20, hours=0.5):
    return {"task": task, "positives": positives, "hits": hits, "false_alarms": fa, "other_phrases": 20,
            "other_accepted": other, "audio_s": hours * 3600}


def test_pooled_counts_over_tasks_not_their_mean():
    got = sb.pooled([result("a", 10, fa=1), result("b", 20, other=2, positives=40)], per_hour=0.1)
    assert np.allclose(got, [0.5, 1.0, 0.05, 0.6])


def test_compare_reads_a_dev_difference_against_the_choice_of_tasks():
    """Paired over tasks: the same results differ by nothing; one hit more in every task is a lower miss rate
    in every draw; a difference made by one task alone has an interval that spans zero."""
    base = [result(f"S{k:02d}", 10 + k % 5) for k in range(20)]
    same = sb.compare(base, base, per_hour=0.1, draws=200)
    assert same["miss_rate"] == {"diff": 0.0, "ci95": [0.0, 0.0]} and same["loss_lower_share"] == 0.0
    better = sb.compare([{**r, "hits": r["hits"] + 1} for r in base], base, per_hour=0.1, draws=200)
    assert better["miss_rate"]["ci95"][1] < 0 and better["loss_lower_share"] == 1.0
    one = sb.compare([{**r, "false_alarms": 6 if r["task"] == "S00" else 0} for r in base], base, per_hour=0.1, draws=500)
    assert one["false_alarms_per_hour"]["diff"] == pytest.approx(0.6) and one["false_alarms_per_hour"]["ci95"][0] == 0.0
    with pytest.raises(SystemExit):
        sb.compare(base[:1], base, per_hour=0.1)


def test_the_report_counts_the_hits_decided_late_that_a_percentile_hides():
    """One task whose phrases are all decided seconds late among many prompt ones: p95 and p99 stay low, the count does not."""
    def timed(task, latencies):
        return {**result(task, len(latencies)), "latencies_s": latencies, "rtf": 0.01, "peak_rss_mb": 100.0,
                "false_alarm_kinds": {}}
    rows = [timed(f"S{k:02d}", [0.2] * 19) for k in range(19)] + [timed("S19", [4.0, 4.5, 0.2])]
    s = sb.summarise(rows)
    assert s["latency_p95_s"] == s["latency_p99_s"] == pytest.approx(0.2) and s["late_hits"] == 2
    assert sb.summarise([timed("S00", [sb.LATE_S, 0.3])])["late_hits"] == 0   # "over", not "at"
