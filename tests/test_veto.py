import json

import numpy as np
import pytest
from synth import SR, stream, utterance

import kws.scoring.veto as veto_module
from kws.app.api import Profile
from kws.app.stream import StreamDetector, detect_blocks
from kws.config import Config, StreamConfig, with_settings
from kws.errors import WeightsError
from kws.nn.encoder import ge2e_sha
from kws.scoring.calibrate import Calibration, stream_config
from kws.scoring.veto import SpeakerVeto, VetoThreshold, speaker_veto, veto_name

PHRASE = ["alpha", "delta"]
ME, OTHER = (120, 1.0), (170, 1.05)     # the enrolled synthetic voice (tests/conftest.py tiny_task), another


def test_veto_file_is_named_for_its_judge():
    assert veto_name(Config()) == "veto_plus-encoder_voice-both.json"
    # the listener's judge: its own front end and voiceprint (calibrate.stream_config)
    assert veto_name(Config(), stream=True) == "veto_stream_mfcc-ns_plus-encoder_voice-encoder_whole.json"
    assert veto_name(stream_config(Config()), stream=True) == veto_name(Config(), stream=True)
    # judges fitted on spans cut to speech keep them, and their own files
    cut = with_settings(["stream.span_vad_crop=true"])
    assert veto_name(cut, stream=True) == "veto_stream_mfcc-ns_plus-encoder_voice-encoder.json"
    # a listener that judges denoised spans has its own judge, so its own veto threshold; predict's is untouched
    dn = Config(stream=StreamConfig(denoise="rnnoise"))
    assert veto_name(dn, stream=True) == "veto_stream_plus-encoder_voice-encoder_denoise-rnnoise.json"
    assert veto_name(dn) == "veto_plus-encoder_voice-both.json"
    assert veto_name(with_settings(["detect.second_frontend=gse"]), stream=True) == \
        "veto_stream_mfcc-ns_plus-gse_voice-encoder_whole.json"
    assert veto_name(with_settings(["stream.word_embedding=true"]), stream=True) == \
        "veto_stream_mfcc-ns_plus-encoder_ewn_voice-encoder_whole.json"
    with pytest.raises(ValueError, match="speaker_veto"):
        with_settings(["detect.speaker_veto=encoder"])


def test_threshold_file_round_trips_and_refuses_other_weights(tmp_path):
    path = tmp_path / "v.json"
    VetoThreshold("ge2e", 1.25, ge2e_sha(), {"command": "x"}).save(path)
    assert VetoThreshold.load(path).min_score == 1.25
    path.write_text(json.dumps({"voiceprint": "ge2e", "min_score": 1.0, "ge2e_sha": "other"}))
    with pytest.raises(WeightsError, match="refit with scripts/fit_veto.py"):
        VetoThreshold.load(path)
    path.write_text("{")
    with pytest.raises(WeightsError, match="damaged"):
        VetoThreshold.load(path)
    with pytest.raises(WeightsError, match="fit_veto.py"):
        VetoThreshold.load(tmp_path / "missing.json")


def test_the_enrolled_voice_outscores_another(personal_profile):
    takes = Profile.load(personal_profile).phrases["alpha-delta"].template_audio
    v = speaker_veto(takes, with_settings(["detect.speaker_veto=ge2e"]))
    mine = v.scores([utterance(PHRASE, *ME, seed=s) for s in (7, 8)])
    other = v.scores([utterance(PHRASE, *OTHER, seed=s) for s in (7, 8)])
    assert mine.min() > other.max() + 1.0, (mine, other)
    assert speaker_veto(takes, Config()) is None          # predict's is off by default
    assert speaker_veto(takes, with_settings(["stream.speaker_veto="]), stream=True) is None


def test_listener_drops_the_phrase_in_another_voice(personal_profile, tmp_path, monkeypatch):
    """Each voice says the phrase twice. A judge made lax enough to accept all four keeps, with the veto,
    the enrolled voice's two, each with its veto score, and drops the other voice's."""
    y, truth = stream([(PHRASE, *ME), (["bravo"], *OTHER), (PHRASE, *OTHER), (["omega"], *ME), (PHRASE, *ME),
                       (PHRASE, *OTHER)], seed=5)
    phrases = Profile.load(personal_profile).phrases
    takes = phrases["alpha-delta"].template_audio
    probe = speaker_veto(takes, with_settings(["detect.speaker_veto=ge2e"]))
    starts = [int(s * SR) for s, _, _ in truth]
    mine = probe.scores([y[starts[i]:int(truth[i][1] * SR)] for i in (0, 4)])
    other = probe.scores([y[starts[i]:int(truth[i][1] * SR)] for i in (2, 5)])
    cut = float((mine.min() + other.max()) / 2)
    monkeypatch.setattr(veto_module, "PRETRAINED_DIR", tmp_path)
    cfg = Config()    # the listener's veto is on by default
    VetoThreshold("ge2e", cut, ge2e_sha()).save(tmp_path / veto_name(stream_config(cfg), stream=True))

    def found(c: Config) -> list:
        det = StreamDetector(phrases, Calibration.for_stream(c), offset=-4.0, cfg=c)
        return list(detect_blocks(det, (y[i:i + 8000] for i in range(0, len(y), 8000))))

    lax = found(with_settings(["stream.speaker_veto="]))
    said = lambda d: next(i for i, (s, e, _) in enumerate(truth) if s - 0.3 <= d.start_s < e)   # noqa: E731
    assert {said(d) for d in lax} >= {0, 2, 4, 5}
    kept = found(cfg)
    assert {said(d) for d in kept} == {said(d) for d in lax} - {2, 5}
    assert all(d.scores["veto"] >= cut for d in kept)


def test_veto_needs_enrollment_audio():
    with pytest.raises(WeightsError, match="enroll again"):
        SpeakerVeto.of([], np.eye(3, dtype=np.float32), 0.0)


def test_predict_drops_an_accepted_clip_in_another_voice(personal_profile, tmp_path, monkeypatch):
    """commands.veto_decisions: of two accepted files, the other voice's is dropped and both get a score;
    a file not accepted is not heard; out of time, the decisions stand."""
    import time

    from conftest import write

    from kws.app.commands import veto_decisions
    profile = Profile.load(personal_profile).phrases["alpha-delta"]
    paths = [write(tmp_path / f"{k}.wav", utterance(PHRASE, *v, seed=9)) for k, v in
             (("me", ME), ("other", OTHER), ("quiet", ME))]
    cfg = with_settings(["detect.speaker_veto=ge2e"])
    monkeypatch.setattr(veto_module, "PRETRAINED_DIR", tmp_path)
    VetoThreshold("ge2e", -1e9, ge2e_sha()).save(tmp_path / veto_name(cfg))
    heard = np.full(3, np.nan)
    assert veto_decisions(profile, paths, [1, 1, 0], heard, cfg, time.time() + 60) == [1, 1, 0]
    assert np.isfinite(heard[:2]).all() and np.isnan(heard[2]) and heard[0] > heard[1] + 1.0
    VetoThreshold("ge2e", float(heard.mean(where=np.isfinite(heard))), ge2e_sha()).save(tmp_path / veto_name(cfg))
    assert veto_decisions(profile, paths, [1, 1, 0], np.full(3, np.nan), cfg, time.time() + 60) == [1, 0, 0]
    assert veto_decisions(profile, paths, [1, 1, 0], np.full(3, np.nan), cfg, time.time() - 1) == [1, 1, 0]


def test_listener_without_a_fitted_veto_runs_without_it(personal_profile, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(veto_module, "PRETRAINED_DIR", tmp_path)
    takes = Profile.load(personal_profile).phrases["alpha-delta"].template_audio
    assert speaker_veto(takes, Config(), stream=True) is None and "without the speaker veto" in caplog.text
    with pytest.raises(WeightsError, match="fit_veto.py"):     # predict's, asked for, must exist
        speaker_veto(takes, with_settings(["detect.speaker_veto=ge2e"]))


def test_missing_ge2e_weights_say_how_to_listen_without_the_veto(personal_profile, monkeypatch):
    def missing(*_):
        raise WeightsError("the GE2E voiceprint needs the weights of the Resemblyzer wheel")
    monkeypatch.setattr(veto_module, "embed_speakers", missing)
    takes = Profile.load(personal_profile).phrases["alpha-delta"].template_audio
    with pytest.raises(WeightsError, match="Resemblyzer.*--set stream.speaker_veto="):
        speaker_veto(takes, Config(), stream=True)
