"""scripts/build_training_set.py and its parts: augmentation functions, synthetic speakers, a tiny build."""
import csv
import hashlib
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from synth import SR, utterance

import augment as A
import build_training_set as B
import synth_speakers as S

HAS_ESPEAK = shutil.which("espeak-ng") is not None
HAS_SOX = shutil.which("sox") is not None
needs_espeak = pytest.mark.skipif(not HAS_ESPEAK, reason="espeak-ng not installed")
needs_sox = pytest.mark.skipif(not HAS_SOX, reason="sox not installed")
# The room simulator is a training dependency (pip install .[train]), not the runtime's.
needs_rooms = pytest.mark.skipif(importlib.util.find_spec("pyroomacoustics") is None,
                                 reason="pyroomacoustics not installed (pip install .[train])")


def band_energy(y: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum())


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return utterance(["alpha", "delta", "bravo"], seed=3)


# ---------------------------------------------------------------- augmentation

@pytest.mark.parametrize("snr", [5.0, 12.5, 25.0])
def test_add_noise_gives_the_snr_asked(speech, snr):
    noise = np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32)
    out = A.add_noise(speech, noise, snr, np.random.default_rng(1))
    measured = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean((out - speech).astype(np.float64) ** 2))
    assert abs(measured - snr) < 0.5 and len(out) == len(speech) and out.dtype == np.float32


def test_noise_shorter_than_speech_is_looped(speech):
    out = A.add_noise(speech, np.ones(100, np.float32), 10, np.random.default_rng(0))
    assert len(out) == len(speech) and np.all(np.isfinite(out))


@needs_rooms
def test_reverb_keeps_length_and_energy_and_smears(speech):
    rir, room = A.make_rir(np.random.default_rng(0), rt60=0.3)
    assert 0.05 * SR < len(rir) < 2 * SR and room.rt60 == 0.3 and room.distance > 0
    wet = A.reverb(speech, rir)
    assert len(wet) == len(speech)
    assert np.sqrt(np.mean(wet ** 2)) == pytest.approx(np.sqrt(np.mean(speech ** 2)), rel=1e-3)
    assert np.corrcoef(wet, speech)[0, 1] < 0.99                       # it did something
    # energy now lingers after the words: the last 0.3 s (silence in the dry take) is louder
    assert np.mean(wet[-int(0.3 * SR):] ** 2) > 10 * np.mean(speech[-int(0.3 * SR):] ** 2)


def test_band_limit_removes_energy_above_the_cut():
    y = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    low = A.band_limit(y, None, 3400)
    assert band_energy(low, 4000, 8000) < 1e-3 * band_energy(y, 4000, 8000)
    assert band_energy(low, 500, 3000) > 0.8 * band_energy(y, 500, 3000)
    tel = A.telephone(y)
    assert band_energy(tel, 4100, 8000) < 1e-3 * band_energy(y, 4100, 8000)
    assert band_energy(tel, 0, 200) < 0.05 * band_energy(y, 0, 200)
    assert len(tel) == len(y) and len(A.mulaw_8k(y)) == len(y)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_length(speech, factor):
    out = A.speed(speech, factor)
    assert len(out) == pytest.approx(len(speech) / factor, rel=0.01)
    assert np.array_equal(A.speed(speech, 1.0), speech)


@needs_sox
def test_pitch_keeps_length_and_tempo_changes_it(speech):
    up = A.pitch(speech, 2.0)
    assert len(up) == pytest.approx(len(speech), rel=0.01) and not np.allclose(up[:len(speech)], speech)
    assert np.array_equal(A.pitch(speech, 2.0), up)                    # deterministic
    assert len(A.tempo(speech, 1.25)) == pytest.approx(len(speech) / 1.25, rel=0.03)


def test_gain_and_peak(speech):
    assert A.peak_db(A.gain(speech, -6)) == pytest.approx(A.peak_db(speech) - 6, abs=1e-3)
    assert A.peak_db(A.peak_normalise(speech, -3)) == pytest.approx(-3, abs=1e-3)


def test_augmenter_is_seeded_and_says_what_it_did(speech):
    noises = [("white", np.random.default_rng(0).standard_normal(SR).astype(np.float32))]
    aug = A.Augmenter(noises, [], A.AugmentConfig(fraction=1.0, p_pitch=0.0, p_tempo=0.0))
    outs = [aug(speech, np.random.default_rng([7, k])) for k in range(12)]
    assert all(d != "none" and d.endswith("dBFS") for _, d in outs)
    assert any("noise(white," in d for _, d in outs)
    y, d = aug(speech, np.random.default_rng([7, 3]))
    assert d == outs[3][1] and np.array_equal(y, outs[3][0])
    none = A.Augmenter(noises, [], A.AugmentConfig(fraction=0.0))(speech, np.random.default_rng(0))
    assert none[1] == "none" and np.array_equal(none[0], speech)


# ---------------------------------------------------------------- synthetic speakers

def test_speaker_specs_cover_languages_and_engines():
    engines = {"espeak-ng", "flite", "festival"}
    specs = [S.make_speaker(i, 1, engines) for i in range(20)]
    assert {s.lang for s in specs} == {"zh", "en", "ar", "de", "es", "fr", "hi", "ru", "it", "pt"}
    assert {s.engine for s in specs} == engines
    assert all(s.voice.startswith("cmn-latn-pinyin+") for s in specs if s.lang == "zh")
    for s in specs:
        assert 2 <= len(s.wake) <= 3 and len(s.others) == 20
        assert all(len(p.split()) >= 2 for p in s.wake) and not set(s.wake) & set(s.others)
    assert S.make_speaker(5, 1, engines) == specs[5] and S.make_speaker(5, 2, engines) != specs[5]
    # without flite and festival, their English turns fall back to espeak-ng
    assert {S.make_speaker(i, 1, {"espeak-ng"}).engine for i in range(20)} == {"espeak-ng"}
    with pytest.raises(S.SynthError, match="apt-get install espeak-ng"):
        S.make_speaker(0, 1, set())


def test_confusables_share_words_but_are_not_the_wake_phrase():
    pool = S.POOLS["cmn"]
    wake = ["xiao3 zhi4 tong2 xue2", "da4 bai2 ni3 hao3"]
    conf = S.confusables(wake, pool, "zh", np.random.default_rng(0))
    assert conf and not set(conf) & set(wake) and len(set(conf)) == len(conf)
    assert "xiao3 zhi4 tong2" in conf                                 # a partial phrase
    toneless = lambda p: [w[:-1] for w in p.split()]  # noqa: E731
    retoned = [c for c in conf for p in wake if c != p and toneless(c) == toneless(p)]
    assert retoned, "a Mandarin confusable with one syllable in another tone"


@needs_espeak
def test_render_take_is_deterministic_and_jittered():
    spec = S.make_speaker(0, 1, {"espeak-ng"})
    a, ta = S.render_take(spec, spec.wake[0], np.random.default_rng(1))
    b, _ = S.render_take(spec, spec.wake[0], np.random.default_rng(1))
    c, tc = S.render_take(spec, spec.wake[0], np.random.default_rng(2))
    assert np.array_equal(a, b) and ta != tc and (len(a) != len(c) or not np.array_equal(a, c))
    assert 0.5 * SR < len(a) < 5 * SR and A.peak_db(a) == pytest.approx(ta.peak_dbfs, abs=0.01)


# ---------------------------------------------------------------- a tiny build

@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A words folder in the shared layout (4 train speakers of 2 corpora, 1 dev speaker) and a noise folder."""
    root = tmp_path_factory.mktemp("inputs")
    words, noise = root / "words", root / "noise"
    rows = []
    names = ["alpha", "bravo", "delta", "omega"]
    for corpus, spk, split, f0 in [("aa", "aa_1", "train", 110), ("aa", "aa_2", "train", 180),
                                   ("bb", "bb_1", "train", 140), ("bb", "bb_2", "train", 220),
                                   ("bb", "bb_9", "dev", 160)]:
        for w in names:
            for rep in (1, 2, 3):
                rel = f"{split}/{corpus}/{spk}/{w}_{rep:02d}.flac"
                y = utterance([w], f0=f0, seed=rep)
                (words / rel).parent.mkdir(parents=True, exist_ok=True)
                sf.write(words / rel, y, SR, subtype="PCM_16")
                rows.append(dict(path=rel, split=split, corpus=corpus, speaker=spk, word=w, lang="en", rep=rep,
                                 seconds=f"{len(y) / SR:.3f}", licence="test"))
    with open(words / "manifest.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    noise.mkdir()
    sf.write(noise / "hum.flac", 0.1 * np.random.default_rng(0).standard_normal(2 * SR), SR)
    return words, noise


def tiny_build(inputs, out: Path, jobs: int, *extra: str) -> dict:
    words, noise = inputs
    synthetic = "2" if HAS_ESPEAK else "0"
    return B.main(["--words", str(words), "--noise", str(noise), "--out", str(out), "--max-real", "2",
                   "--synthetic", synthetic, "--wake", "2", "--takes", "2", "--others", "3", "--real-keywords", "2",
                   "--rirs", "1", "--jobs", str(jobs), "--seed", "5", *extra])


def read_manifest(out: Path) -> list[dict]:
    with open(out / "manifest.tsv", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("build") / "set"
    return out, tiny_build(inputs, out, jobs=1)


@needs_rooms
def test_tiny_build_layout_and_manifest(built):
    out, summary = built
    rows = read_manifest(out)
    wavs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav"))
    assert sorted(r["path"] for r in rows) == wavs
    assert set(rows[0]) == set(B.MANIFEST_FIELDS)
    n_synth = 2 if HAS_ESPEAK else 0
    speakers = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert speakers == [f"T{i:03d}" for i in range(1, 3 + n_synth)]
    for r in rows:
        assert r["path"].split("/")[1] == {"keyword": "keywords", "other": "others"}[r["role"]]
        assert r["path"].startswith(r["speaker"] + "/")
        info = sf.info(str(out / r["path"]))
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert float(r["seconds"]) == pytest.approx(info.duration, abs=1e-3)
    real = [r for r in rows if r["speaker"] in ("T001", "T002")]
    assert {r["source"] for r in real} == {"aa", "bb"}                   # corpora interleaved
    assert not any("/dev/" in r["origin"] or "bb_9" in r["origin"] for r in rows)   # never the dev split
    for spk in ("T001", "T002"):
        mine = [r for r in real if r["speaker"] == spk]
        assert sum(r["role"] == "keyword" for r in mine) == 2 * 3 and sum(r["role"] == "other" for r in mine) == 2 * 3
    if n_synth:
        syn = [r for r in rows if r["speaker"] == "T003"]
        assert sum(r["role"] == "keyword" for r in syn) == 2 * 2 and sum(r["role"] == "other" for r in syn) == 3
        assert syn[0]["source"] == "espeak-ng" and syn[0]["lang"] == "zh" and syn[0]["prosody"].startswith("rate")
    assert any(r["augment"] != "none" for r in rows) and any(r["augment"] == "none" for r in rows)
    assert summary["files"] == len(rows) and (out / "speakers.tsv").is_file() and (out / "build_info.json").is_file()


@needs_rooms
def test_tiny_build_is_deterministic_across_jobs(built, inputs, tmp_path):
    out, _ = built
    again = tmp_path / "again"
    tiny_build(inputs, again, jobs=2)
    assert digest(again) == digest(out)


@needs_rooms
def test_existing_output_needs_force(built, inputs):
    out, _ = built
    with pytest.raises(SystemExit, match="--force"):
        tiny_build(inputs, out, jobs=1)


def test_bad_inputs_fail_clearly(inputs, tmp_path, monkeypatch):
    words, noise = inputs
    with pytest.raises(SystemExit, match="words folder .* not found"):
        B.main(["--words", str(tmp_path / "nowhere"), "--noise", str(noise), "--out", str(tmp_path / "o1")])
    with pytest.raises(SystemExit, match="no such noise folder"):
        B.main(["--words", str(words), "--noise", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2"),
                "--synthetic", "0"])
    monkeypatch.setattr(B, "available_engines", lambda: set())
    with pytest.raises(SystemExit, match="espeak-ng is not installed"):
        B.main(["--words", str(words), "--noise", str(noise), "--out", str(tmp_path / "o3"), "--synthetic", "1"])
