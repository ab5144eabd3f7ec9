import json

import numpy as np
import pytest

from kws.config import DEFAULT
from kws.nn.encoder import DIM, load_multitask
from kws.enrollment.enroll import build_profile
from kws.errors import EnrollmentError, ProfileError
from kws.scoring.profile import SpeakerProfile


def test_enroll_save_load_roundtrip(tiny_task, tmp_path):
    paths = sorted((tiny_task / "data" / "S001" / "enroll").glob("*.wav"))
    p = build_profile(paths)
    encoder_dims = load_multitask().arrays["spk_out_w"].shape[0]
    dims = {"encoder": encoder_dims, "ge2e": DIM, "both": DIM + encoder_dims}[DEFAULT.detect.voiceprint]
    assert len(p.templates) == 5 and p.voiceprint.shape == (dims,)
    assert p.kw_enroll_mean < p.kw_cohort_mean[:-1].mean()      # takes resemble each other more than impostors
    p.save(tmp_path)
    q = SpeakerProfile.load(tmp_path)
    assert q.clips == p.clips and np.allclose(q.average, p.average)
    assert all(np.array_equal(a, b) for a, b in zip(p.templates, q.templates))
    # the takes as cut for the templates come back as float16 (noise-matched templates)
    assert len(q.template_audio) == 5 and all(len(a) == len(b) and np.abs(a - b).max() < 1e-3
                                              for a, b in zip(p.template_audio, q.template_audio))


def test_enroll_skips_bad_clips(tiny_task, tmp_path):
    paths = sorted((tiny_task / "data" / "S001" / "enroll").glob("*.wav"))[:3]
    (tmp_path / "silent.wav").write_bytes(b"")
    p = build_profile(paths + [tmp_path / "silent.wav"])
    assert len(p.templates) == 3 and any("0 bytes" in w for w in p.warnings)
    with pytest.raises(EnrollmentError, match="no usable"):
        build_profile([tmp_path / "silent.wav"])


def test_load_errors(tmp_path):
    with pytest.raises(ProfileError, match="run enrollment.sh"):
        SpeakerProfile.load(tmp_path)
    (tmp_path / "profile.json").write_text(json.dumps({"version": 1, "n_templates": 0}))
    with pytest.raises(ProfileError, match="older version.*enroll again"):
        SpeakerProfile.load(tmp_path)
    (tmp_path / "profile.npz").write_bytes(b"garbage")
    with pytest.raises(ProfileError, match="damaged"):
        SpeakerProfile.load(tmp_path)


# --- issue 13: one atomic file, validated on load (D2, D5, D9, D15, D16) ---
import os  # noqa: E402
import shutil  # noqa: E402

from conftest import run  # noqa: E402

from kws.scoring.profile import PROFILE_NAME, STALE_NAME, replacing  # noqa: E402
from bad_inputs import TAMPERS  # noqa: E402


@pytest.fixture(scope="module")
def saved(tiny_task, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    build_profile(sorted((tiny_task / "data" / "S001" / "enroll").glob("*.wav"))).save(folder)
    return folder


@pytest.mark.parametrize("kind", list(TAMPERS))
def test_tampered_profile_is_a_profile_error(saved, tmp_path, kind):
    from kws.scoring.cohort import load_cohort
    from kws.config import DEFAULT
    from kws.scoring.detect import check_compatible
    w = tmp_path / "w"
    shutil.copytree(saved, w)
    TAMPERS[kind](w)
    with pytest.raises(ProfileError, match="enroll again|run enrollment.sh first") as e:
        p = SpeakerProfile.load(w)
        check_compatible(p, DEFAULT, w, load_cohort(cfg=DEFAULT.features, voiceprint=DEFAULT.detect.voiceprint))
    assert str(w) in str(e.value)


def test_profile_is_one_file_with_the_umask_mode(saved):
    assert sorted(p.name for p in saved.iterdir()) == [PROFILE_NAME]
    assert (saved / PROFILE_NAME).stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_failed_enrollment_leaves_no_profile_in_use(saved, tiny_task, tmp_path):
    """D15: another speaker's profile is set aside first; predict then refuses with a complete all-0 file."""
    w = tmp_path / "w"
    shutil.copytree(saved, w)
    with pytest.raises(RuntimeError):
        with replacing(w):
            raise RuntimeError("killed")
    assert (w / STALE_NAME).is_file() and not (w / PROFILE_NAME).exists()
    r = run("predict.sh", tiny_task / "data" / "S001" / "test", w, tmp_path / "p.txt")
    assert r.returncode == 2 and "did not finish" in r.stderr
    from kws.harness.metrics import parse_predictions
    assert set(parse_predictions((tmp_path / "p.txt").read_text()).values()) == {0}
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.wav").write_bytes(b"junk")
    shutil.copytree(saved, tmp_path / "w2")
    assert run("enrollment.sh", bad, tmp_path / "w2").returncode == 2
    assert not (tmp_path / "w2" / PROFILE_NAME).exists()


def test_non_utf8_clip_name_saves_whole(tiny_task, tmp_path):
    """D15: a clip name that is not UTF-8 used to fail the JSON half after the npz half was renamed."""
    src = sorted((tiny_task / "data" / "S001" / "enroll").glob("*.wav"))
    d = tmp_path / "e"
    d.mkdir()
    for i, p in enumerate(src):
        with open(os.fsencode(d) + f"/t{i}\xe9.wav".encode("latin-1"), "wb") as f:
            f.write(p.read_bytes())
    r = run("enrollment.sh", d, tmp_path / "w")
    assert r.returncode == 0, r.stderr
    assert len(SpeakerProfile.load(tmp_path / "w").clips) == 5


def test_fingerprint_covers_voiceprint_and_cohort(saved):
    """D16: other voiceprint weights or another cohort change the fingerprint, so the profile is refused."""
    from dataclasses import replace

    from kws.scoring.cohort import load_cohort
    from kws.config import DEFAULT
    from kws.scoring.detect import check_compatible, model_fingerprint
    cohort = load_cohort(cfg=DEFAULT.features, voiceprint=DEFAULT.detect.voiceprint)
    p = SpeakerProfile.load(saved)
    check_compatible(p, DEFAULT, saved, cohort)
    with pytest.raises(ProfileError, match="voiceprint or cohort weights"):
        check_compatible(p, DEFAULT, saved, replace(cohort, sha="other"))
    from kws.nn import encoder
    real = encoder.load_multitask()
    try:
        encoder.load_multitask.cache_clear()
        import kws.scoring.detect as detect
        orig = detect.load_multitask
        detect.load_multitask = lambda: replace(real, sha="retrained")
        assert model_fingerprint(DEFAULT, cohort) != p.model_fingerprint
    finally:
        detect.load_multitask = orig
        encoder.load_multitask.cache_clear()


def test_concurrent_enrollments_into_one_folder_leave_one_whole_profile(tiny_task, tmp_path):
    """D6: the lock serialises them; the profile is A's or B's, never a mix."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import write
    from synth import utterance
    dirs = {}
    for s, words in enumerate([["alpha", "delta"], ["bravo", "omega"]]):
        dirs[s] = tmp_path / f"spk{s}"
        for i in range(5):
            write(dirs[s] / f"s{s}e{i}.wav", utterance(words, seed=10 * s + i))
    with ThreadPoolExecutor(2) as pool:
        rs = list(pool.map(lambda s: run("enrollment.sh", dirs[s], tmp_path / "w"), dirs))
    assert all(r.returncode == 0 for r in rs), [r.stderr for r in rs]
    p = SpeakerProfile.load(tmp_path / "w")
    assert {c[:2] for c in p.clips} in ({"s0"}, {"s1"})
    alone = build_profile(sorted(dirs[int(p.clips[0][1])].glob("*.wav")))
    assert np.array_equal(alone.average, p.average)
