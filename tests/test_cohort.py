import numpy as np
import pytest

from kws.scoring.cohort import Cohort, load_cohort
from kws.config import FeatureConfig
from kws.errors import WeightsError

F = FeatureConfig()


def test_shipped_cohort_loads():
    c = load_cohort(cfg=F, voiceprint="ge2e")
    assert len(c.keyword_frames) >= 100 and len(c.templates) >= 50
    assert c.speaker_embeddings.shape[1] == 256
    assert c.keyword_frames[0].shape[1] == FeatureConfig().n_ceps - 1


def test_damaged_and_mismatched_cohorts(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="damaged"):
        load_cohort(tmp_path / "bad.npz", cfg=F, voiceprint="ge2e")
    with pytest.raises(WeightsError, match="missing"):
        load_cohort(tmp_path / "none.npz", cfg=F, voiceprint="ge2e")
    f = [np.zeros((5, 19), np.float32)]
    np.savez(tmp_path / "old.npz", **Cohort.pack(f, f, np.ones((1, 256)), "other-settings"))
    with pytest.raises(WeightsError, match="rebuild"):
        load_cohort(tmp_path / "old.npz", cfg=F, voiceprint="ge2e")


def test_cohort_voiceprints_of_each_kind(tmp_path, monkeypatch):
    from kws.scoring import cohort as cohort_mod
    g = load_cohort(cfg=F, voiceprint="ge2e")
    e = load_cohort(cfg=F, voiceprint="encoder")
    b = load_cohort(cfg=F, voiceprint="both")
    assert len(e.speaker_embeddings) == len(b.speaker_embeddings) == len(g.speaker_embeddings)
    assert b.speaker_embeddings.shape[1] == 256 + e.speaker_embeddings.shape[1]
    assert e.keyword_frames is g.keyword_frames          # only the voiceprints differ
    t = load_cohort(cfg=F, voiceprint="trunk")
    assert len(t.speaker_embeddings) == len(g.speaker_embeddings) and t.sha not in (e.sha, g.sha)
    # a damaged or missing file, or one made with other encoder weights, is refused with what to do
    shipped = cohort_mod.PRETRAINED_DIR / cohort_mod.COHORT_FILE
    monkeypatch.setattr(cohort_mod, "PRETRAINED_DIR", tmp_path)
    vp_file = tmp_path / cohort_mod.ENCODER_VOICEPRINTS_FILE
    try:
        for content, error in ((None, "missing"), (b"garbage", "damaged"), ("other-weights", "rebuild")):
            cohort_mod._load_encoder_voiceprints.cache_clear()
            if isinstance(content, bytes):
                vp_file.write_bytes(content)
            elif content:
                with open(vp_file, "wb") as f:
                    np.savez(f, speaker_embeddings=np.ones((3, 4)), encoder_sha=np.array(content))
            with pytest.raises(WeightsError, match=error):
                load_cohort(shipped, cfg=F, voiceprint="encoder")
    finally:
        cohort_mod._load_encoder_voiceprints.cache_clear()
