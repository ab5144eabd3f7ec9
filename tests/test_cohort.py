import numpy as np
import pytest

from kws.cohort import Cohort, load_cohort
from kws.config import FeatureConfig
from kws.errors import WeightsError


def test_shipped_cohort_loads():
    c = load_cohort()
    assert len(c.keyword_frames) >= 100 and len(c.templates) >= 50
    assert c.speaker_embeddings.shape[1] == 256
    assert c.keyword_frames[0].shape[1] == FeatureConfig().n_ceps - 1


def test_damaged_and_mismatched_cohorts(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="damaged"):
        load_cohort(tmp_path / "bad.npz")
    with pytest.raises(WeightsError, match="missing"):
        load_cohort(tmp_path / "none.npz")
    f = [np.zeros((5, 19), np.float32)]
    np.savez(tmp_path / "old.npz", **Cohort.pack(f, f, np.ones((1, 256)), "other-settings"))
    with pytest.raises(WeightsError, match="rebuild"):
        load_cohort(tmp_path / "old.npz")
