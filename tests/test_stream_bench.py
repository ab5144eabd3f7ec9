"""scripts/stream_bench.py: which voices a bench is built from."""
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
