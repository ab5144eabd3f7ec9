"""scripts/eval_speaker.py's scoring rules and held-out languages, on made-up embeddings and manifests."""
import csv

import numpy as np
import pytest

import eval_speaker as ev
from word_corpus import Words, held_out_langs, split_speakers


def test_snorm_puts_a_hub_enrollment_in_its_place():
    """Enrollment 0 is a hub (close to every cohort voice): its impostor outscores enrollment 1's target on raw
    cosines, not after score normalisation, plain or adaptive."""
    rng = np.random.default_rng(0)
    raw = np.array([[0.9, 0.8], [0.2, 0.5]])          # rows: enrollments; columns: tests (0's target, 1's target)
    target = np.array([[True, False], [False, True]])
    enroll_cohort = np.stack([0.7 + 0.05 * rng.standard_normal(60), 0.1 + 0.05 * rng.standard_normal(60)])
    test_cohort = 0.3 + 0.1 * rng.standard_normal((2, 60))
    assert ev.measure(raw, target, target)["eer"] > 0
    for top in (None, 10):
        s = ev.snorm(raw, enroll_cohort, test_cohort, top)
        assert s.shape == raw.shape and ev.measure(s, target, target)["eer"] == 0.0, top


def test_systems_separate_speakers_and_fuse_both_voiceprints():
    """Two voiceprints of four speakers, 2 enrollments each: every rule ranks targets first when the voices are
    apart, and the score fusion is the mean of the two voiceprints' rules."""
    rng = np.random.default_rng(1)
    centres = {v: rng.standard_normal((4, 16)) * 3 for v in ev.VOICEPRINTS}
    owners = [0, 1, 2, 3, 0, 1, 2, 3]
    tests = [0, 0, 1, 1, 2, 2, 3, 3]
    enroll = {v: np.stack([c[o] + 0.3 * rng.standard_normal((5, 16)) for o in owners]) for v, c in centres.items()}
    enroll = {v: e / np.linalg.norm(e, axis=2, keepdims=True) for v, e in enroll.items()}
    test = {v: np.stack([c[o] + 0.3 * rng.standard_normal(16) for o in tests]) for v, c in centres.items()}
    cohort = {v: rng.standard_normal((40, 16)) * 3 for v in ev.VOICEPRINTS}
    target = np.array([[o == t for t in tests] for o in owners])
    out = ev.systems(enroll, test, cohort)
    assert {"ge2e/mean", "encoder/mean+s", "both/mean+as", "ge2e+encoder/takes+as"} <= set(out)
    for name, s in out.items():
        assert s.shape == target.shape
        assert ev.measure(s, target, target)["eer"] == 0.0, name
    assert np.allclose(out["ge2e+encoder/mean+s"], 0.5 * (out["ge2e/mean+s"] + out["encoder/mean+s"]))


def test_held_out_language_keeps_the_other_speakers_halves(tmp_path):
    rows = [dict(path=f"{s}.flac", split="train", corpus=c, speaker=s, word="w", lang=lang, rep=1, seconds=1, licence="t")
            for s, c, lang in [("a1", "asc", "ar"), ("d1", "dsp", "zh"), ("d2", "dsp", "zh"), ("a2", "asc", "ar"),
                               ("g1", "gsc", "en"), ("g2", "gsc", "en")]]
    with open(tmp_path / "manifest.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    words = Words(tmp_path, "train")
    assert words.lang == {"a1": "ar", "d1": "zh", "d2": "zh", "a2": "ar", "g1": "en", "g2": "en"}
    held = held_out_langs("ar,")
    assert held == {"ar"} and held_out_langs("") == set()
    cohort, calibration = split_speakers(words.speakers)
    kept = [s for s in cohort if words.lang[s] not in held]
    assert set(kept) <= set(cohort) and not {"a1", "a2"} & set(kept) and set(calibration) & {"d1", "d2", "g1", "g2"}


WORDS = ev.Path(__file__).resolve().parents[2] / "shared" / "data" / "words"
NOISE = ev.Path(__file__).resolve().parents[1] / ev.TRAIN_NOISE_DIR


@pytest.mark.skipif(not (WORDS.is_dir() and NOISE.is_dir()),
                    reason="needs ../shared/data/words and build/train-noise (scripts/build_train_noise.py)")
def test_other_ge2e_layers_meet_the_shipped_cohorts_utterances(monkeypatch):
    """--ge2e draws the cohort's utterances again: with the shipped layers their embeddings are the shipped ones."""
    import build_cohort
    from kws.config import DEFAULT
    from kws.nn.encoder import embed_speakers, load_ge2e
    from kws.scoring.cohort import load_cohort
    monkeypatch.setattr(build_cohort, "COUNT", 6)     # the first utterances are drawn the same whatever the count
    emb = embed_speakers(ev.cohort_crops(WORDS, NOISE), load_ge2e())
    shipped = load_cohort(cfg=DEFAULT.features, voiceprint="ge2e").speaker_embeddings[:6].astype(np.float32)
    assert np.abs(ev.unit(emb) - ev.unit(shipped)).max() < 2e-3
