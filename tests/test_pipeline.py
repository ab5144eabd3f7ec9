"""pipeline.fused_margins: each clip by its tier's calibration, test-set normalised when the folder allows."""
import numpy as np

from kws.scoring.calibrate import Calibration
from kws.config import Config
from kws.app.commands import Tier, fused_margins

PLAIN = Calibration(("kw_z",), (0.0,), (1.0,), (1.0,), 0.0, 3.0)            # kw_z > 3
BY_SET = Calibration(("kw_z@set",), (0.0,), (1.0,), (1.0,), 0.0, 2.0)       # 2 sd above the folder's mean
KEYWORD = Calibration(("kw_t",), (0.0,), (1.0,), (1.0,), 0.0, 1.0)


def folder(z: list[float]) -> dict[str, np.ndarray]:
    return {"kw_z": np.array(z), "kw_t": np.array(z) / 2}


def test_plain_calibration_on_a_small_folder():
    tiers = [Tier("full", True, PLAIN, BY_SET)]
    margin, by_set = fused_margins(tiers, folder([4.0, 2.5, 0.0]), np.zeros(3, int), Config())
    assert not by_set and np.allclose(margin, [1.0, -0.5, -3.0])


def test_set_normalisation_judges_a_clip_by_its_folder():
    quiet = [0.0, 0.2] * 22 + [2.5]          # 45 clips; 2.5 stands out although under the plain threshold
    margin, by_set = fused_margins([Tier("full", True, PLAIN, BY_SET)], folder(quiet), np.zeros(45, int), Config())
    assert by_set and margin[-1] > 0 and (margin[:-1] < 0).all()
    # switched off, or no set calibration: the plain threshold decides
    off = Config()
    off = type(off)(detect=type(off.detect)(set_norm=False))
    margin, by_set = fused_margins([Tier("full", True, PLAIN, BY_SET)], folder(quiet), np.zeros(45, int), off)
    assert not by_set and margin[-1] < 0
    margin, by_set = fused_margins([Tier("full", True, PLAIN, None)], folder(quiet), np.zeros(45, int), Config())
    assert not by_set and margin[-1] < 0


def test_each_clip_uses_its_own_tier_and_unscored_clips_stay_nan():
    tiers = [Tier("full", True, PLAIN, None), Tier("keyword", False, KEYWORD, None)]
    row_tier = np.array([0, 1, -1])
    margin, _ = fused_margins(tiers, folder([3.5, 3.5, 9.0]), row_tier, Config())
    assert np.allclose(margin[:2], [0.5, 0.75]) and np.isnan(margin[2])


# front end, matcher, voiceprint, second front end ("encoder" under the encoder front end: none)
SUPPORTED = [("mfcc", False, "encoder", "encoder"), ("mfcc", True, "encoder", "encoder"),
             ("mfcc", False, "encoder", ""), ("mfcc", False, "ge2e", ""), ("mfcc", False, "both", ""),
             ("mfcc", True, "ge2e", ""), ("mfcc", True, "encoder", ""), ("encoder", False, "encoder", "encoder"),
             ("encoder", False, "ge2e", "encoder"), ("mfcc", False, "both", "encoder"), ("mfcc", False, "trunk", "encoder"),
             ("mfcc-ns", False, "encoder", "encoder")]


def test_every_supported_configuration_has_its_artefacts():
    """The switch combinations README.md lists load, with and without test-set normalisation."""
    from dataclasses import replace

    from kws.config import with_frontend
    from kws.app.commands import check_pretrained, load_tiers
    for (frontend, matcher, voiceprint, second), speaker in ((c, s) for c in SUPPORTED for s in (False, True)):
        cfg = with_frontend(frontend)
        cfg = replace(cfg, detect=replace(cfg.detect, matcher=matcher, voiceprint=voiceprint, speaker_check=speaker,
                                          second_frontend=second))
        check_pretrained(cfg)
        assert [t.speaker for t in load_tiers(cfg)] == ([True, False] if speaker else [False])
        assert all(t.by_set is not None for t in load_tiers(cfg))
        assert all(t.by_set is None for t in load_tiers(replace(cfg, detect=replace(cfg.detect, set_norm=False))))


def test_the_speaker_check_and_noise_matching_are_switches_with_their_own_calibrations():
    from dataclasses import replace

    from kws.scoring.calibrate import calibration_name
    from kws.app.commands import check_pretrained
    cfg = Config()
    assert calibration_name(cfg) == "calibration_plus-encoder_voice-both.json"   # default: speaker check, 2 front ends
    off = replace(cfg, detect=replace(cfg.detect, speaker_check=False))
    assert calibration_name(off) == "calibration_keyword_plus-encoder.json"      # keyword scores alone decide
    one = replace(cfg, detect=replace(cfg.detect, second_frontend=""))
    assert calibration_name(one) == "calibration_voice-both.json"
    assert any(n.startswith("encoder_kw_") for n in Calibration.for_config(cfg).names)
    assert not any(n.startswith("encoder_kw_") for n in Calibration.for_config(one).names)
    gse = replace(cfg, detect=replace(cfg.detect, second_frontend="gse", voiceprint="encoder"))   # the v9 alternatives
    assert calibration_name(gse) == "calibration_plus-gse_voice-encoder.json"
    check_pretrained(replace(gse, detect=replace(gse.detect, voiceprint="both")))
    check_pretrained(gse)
    assert any(n.startswith("gse_kw_") for n in Calibration.for_config(gse).names)
    v8 = replace(cfg, detect=replace(cfg.detect, voiceprint="encoder", second_frontend="encoder"))   # the v5-v20 default
    assert calibration_name(v8) == "calibration_plus-encoder_voice-encoder.json"
    for d in (replace(v8.detect, noise_match=True), replace(v8.detect, noise_match=True, speaker_check=False)):
        nm = replace(v8, detect=d)
        assert calibration_name(nm, by_set=True).endswith("_nm_set.json")
        check_pretrained(nm)
        assert any(n.startswith("kw_nm_") for n in Calibration.for_config(nm).names)


def test_every_calibration_judges_a_clip_in_its_conditions():
    """Each committed calibration was refitted under the noise rule with the cond_* columns."""
    from kws.config import PRETRAINED_DIR
    from kws.scoring.detect import CONDITION_NAMES
    files = sorted(PRETRAINED_DIR.glob("calibration*.json"))
    assert len(files) >= 24
    for f in files:
        assert set(CONDITION_NAMES) <= set(Calibration.load(f).names), f.name
