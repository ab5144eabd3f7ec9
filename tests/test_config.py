"""--set section.field=value: typed, checked, and followed by the loaded calibration."""
import pytest

from kws.scoring.calibrate import Calibration, calibration_name
from kws.config import DEFAULT, settings_from_env, with_settings


def test_settings_are_typed_and_leave_the_rest_alone():
    cfg = with_settings(["features.frontend=encoder", "detect.matcher=true", "detect.set_min_files=12",
                         "stream.sensitivity_span=0.5", "detect.set_norm=off"])
    assert cfg.features.frontend == "encoder" and cfg.detect.matcher is True and cfg.detect.set_min_files == 12
    assert cfg.stream.sensitivity_span == 0.5 and cfg.detect.set_norm is False
    assert cfg.vad == DEFAULT.vad and DEFAULT.detect.matcher is False   # the default is untouched
    assert with_settings({"detect.voiceprint": "ge2e"}).detect.voiceprint == "ge2e"


@pytest.mark.parametrize("setting, message", [
    ("detect.voicprint=ge2e", "unknown field 'voicprint' of detect; fields: top_k, "),
    ("detekt.matcher=1", "unknown section 'detekt'; sections: audio, vad, features"),
    ("detect.matcher", "section.field=value"),
    ("detect.top_k=three", "detect.top_k: 'three' is not an int"),
    ("detect.matcher=maybe", "detect.matcher: 'maybe' is not a bool"),
    ("budget.prior_rate=1", "cannot be set"),
    ("detect.voiceprint=ivector", "detect.voiceprint: 'ivector' is not one of ge2e, encoder, both"),
    ("features.frontend=wav2vec", "features.frontend: 'wav2vec' is not one of mfcc, encoder"),
])
def test_bad_settings_say_what_is_wrong(setting, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        with_settings([setting])


def test_calibration_follows_the_settings():
    cfg = with_settings(["detect.voiceprint=ge2e", "detect.matcher=true", "detect.speaker_check=on",
                         "detect.second_frontend="])
    assert calibration_name(cfg) == "calibration_matcher.json"
    cal = Calibration.for_config(cfg)
    assert "kw_cnn" in cal.names
    assert "kw_cnn" not in Calibration.for_config(DEFAULT).names


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("KWS_SET", "detect.voiceprint=both  detect.set_norm=false")
    assert settings_from_env() == ["detect.voiceprint=both", "detect.set_norm=false"]
    monkeypatch.delenv("KWS_SET")
    assert settings_from_env() == []
