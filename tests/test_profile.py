import json

import numpy as np
import pytest

from kws.encoder import load_multitask
from kws.enroll import build_profile
from kws.errors import EnrollmentError, ProfileError
from kws.profile import SpeakerProfile


def test_enroll_save_load_roundtrip(tiny_task, tmp_path):
    paths = sorted((tiny_task / "data" / "S001" / "enroll").glob("*.wav"))
    p = build_profile(paths)
    assert len(p.templates) == 5 and p.voiceprint.shape == (load_multitask().arrays["spk_out_w"].shape[0],)
    assert p.kw_enroll_mean < p.kw_cohort_mean[:-1].mean()      # takes resemble each other more than impostors
    p.save(tmp_path)
    q = SpeakerProfile.load(tmp_path)
    assert q.clips == p.clips and np.allclose(q.average, p.average)
    assert all(np.array_equal(a, b) for a, b in zip(p.templates, q.templates))


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
