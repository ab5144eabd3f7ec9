import numpy as np
import pytest
from conftest import write
from scipy.signal import resample_poly
from synth import SR, stream, utterance

from kws.app.api import Profile
from kws.signal.audio import read_audio
from kws.scoring.calibrate import Calibration
from kws.config import DEFAULT, Config, StreamConfig
from kws.errors import AudioError, KwsError
from kws.app.stream import StreamDetector, detect_blocks, new_utterance, read_blocks, span_clip, threshold_offset
from kws.signal.audio import Resampler

PHRASE = ["alpha", "delta"]


def blocks(y: np.ndarray, n: int = 8000):
    return (y[i:i + n] for i in range(0, len(y), n))


@pytest.mark.parametrize("sr", [44100, 48000, 8000, 22050])
def test_resampler_equals_whole_signal(sr):
    x = np.random.default_rng(0).standard_normal(sr * 2).astype(np.float32)
    whole = resample_poly(x, *(np.array([SR, sr]) // np.gcd(SR, sr)))
    r, sizes, parts, i = Resampler(sr), [1, 100, 4410, 777, 30000], [], 0
    while i < len(x):
        n = sizes[len(parts) % len(sizes)]
        parts.append(r(x[i:i + n]))
        i += n
    parts.append(r(np.zeros(0, np.float32), last=True))
    got = np.concatenate(parts)
    assert len(got) == len(whole) and np.max(np.abs(got - whole)) < 1e-5


def test_read_blocks_matches_read_audio_and_rejects_bad_files(tmp_path):
    y = resample_poly(utterance(PHRASE), 441, 160).astype(np.float32)
    p = write(tmp_path / "s.flac", np.stack([y, 0.5 * y], 1), sr=44100)
    got = list(read_blocks(p, block_s=0.25))
    assert max(len(b) for b in got) <= 0.26 * SR
    assert np.allclose(np.concatenate(got), read_audio(p), atol=1e-4)
    # Files are decoded seconds at a time, and still come out block by block.
    q = write(tmp_path / "long.wav", np.tile(y[::3], 3), sr=16000)
    got = list(read_blocks(q, block_s=0.1))
    assert {len(b) for b in got[:-1]} == {1600} and 0 < len(got[-1]) <= 1600
    assert np.array_equal(np.concatenate(got), read_audio(q))
    (tmp_path / "t.wav").write_text("text")
    (tmp_path / "e.wav").write_bytes(b"")
    for bad in ("t.wav", "e.wav", "missing.wav"):
        with pytest.raises(AudioError, match=bad):
            list(read_blocks(tmp_path / bad))


def test_sensitivity_maps_onto_the_threshold():
    assert threshold_offset("balanced") == 0.0
    assert threshold_offset("fewest-false-alarms") == 1.0 and threshold_offset("fewest-misses") == -1.0
    assert threshold_offset(0.75) == pytest.approx(-0.5) and threshold_offset("0.25") == pytest.approx(0.5)
    for bad in ("loud", 1.5, "-0.1"):
        with pytest.raises(KwsError, match="sensitivity"):
            threshold_offset(bad)


def test_nan_block_is_silence_and_the_scan_goes_on(tmp_path, caplog):
    """D12: one NaN sample used to stop the scan for the rest of the file."""
    import logging

    import soundfile as sf
    y = np.concatenate([utterance(PHRASE, seed=1), np.zeros(SR * 3, np.float32), utterance(PHRASE, seed=2)])
    y[SR] = np.nan
    sf.write(tmp_path / "nan.wav", y, SR, subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        out = np.concatenate(list(read_blocks(tmp_path / "nan.wav")))
    assert len(out) == len(y) and np.isfinite(out).all() and "treated as silence" in caplog.text
    assert np.array_equal(out[-SR:], y[-SR:])


def detector(profile_dir, **stream) -> StreamDetector:
    cfg = Config(stream=StreamConfig(**stream))
    return StreamDetector(Profile.load(profile_dir).phrases, Calibration.for_stream(cfg), cfg=cfg)


def test_the_word_embedding_option_without_its_extra_is_refused_at_once(personal_profile, monkeypatch):
    """--set stream.word_embedding=true with the `ewn` extra missing: a clear error when the listener starts."""
    from kws.errors import KwsError
    from kws.nn import efficientword
    monkeypatch.setattr(efficientword.importlib.util, "find_spec", lambda name: None)
    efficientword.session.cache_clear()
    with pytest.raises(KwsError, match="EfficientWord-Net"):
        detector(personal_profile, word_embedding=True)
    efficientword.session.cache_clear()


UTTERANCES = [(["bravo"], 120, 1.0), (PHRASE, 120, 1.0), (["omega", "bravo"], 120, 1.0), (["delta", "omega"], 120, 1.0),
              (["bravo", "alpha", "delta"], 120, 1.0), (["omega"], 200, 1.15), (PHRASE, 120, 1.0),
              (["bravo", "omega", "bravo"], 200, 1.15), (["alpha", "delta", "omega"], 120, 1.0), (["bravo"], 120, 1.0)]


def test_phrase_detected_at_its_time_and_nowhere_else(personal_profile):
    y, truth = stream(UTTERANCES, seed=3)
    det = detector(personal_profile)
    found = list(detect_blocks(det, blocks(y)))
    wanted = [(s, e) for s, e, w in truth if "alpha" in w and "delta" in w]
    assert len(found) == len(wanted), found
    for d, (s, e) in zip(found, wanted):
        assert d.phrase == "alpha-delta" and s <= d.start_s < d.end_s <= e
        assert d.fused > d.threshold and d.decided_s >= d.end_s
    assert det.pending == [] and abs(det.seconds - len(y) / SR) < 1e-6


def test_live_decides_as_the_phrase_ends_and_as_files_do(personal_profile):
    """Live (each candidate judged in the hop that finds it, 0.1 s blocks) and batched (0.5 s blocks,
    candidates waiting 10 s) make the same decisions; live ones come within a few hops of the match."""
    y, _ = stream(UTTERANCES, seed=3)
    live = list(detect_blocks(detector(personal_profile, max_delay_s=0.0), blocks(y, 1600)))
    files = list(detect_blocks(detector(personal_profile), blocks(y, 8000)))
    odd = list(detect_blocks(detector(personal_profile), blocks(y, 777)))
    assert live and len(live) == len(files) == len(odd)
    for a, b, c in zip(live, files, odd):
        assert a.phrase == b.phrase == c.phrase and a.start_s == b.start_s == c.start_s and a.end_s == b.end_s
        assert a.fused == pytest.approx(b.fused, abs=1e-4) and c.fused == pytest.approx(b.fused, abs=1e-4)
        assert a.end_s < a.decided_s <= a.end_s + 0.4 < b.decided_s


def test_phrase_inside_unbroken_speech_found_once(personal_profile):
    """No pause marks the phrase: it sits among other words, and is still found, once, where it is."""
    words = ["omega", "bravo", "omega", "bravo", "alpha", "delta", "bravo", "omega", "bravo", "omega"]
    y, truth = stream([(words, 120, 1.0)], seed=4)
    found = list(detect_blocks(detector(personal_profile, max_delay_s=0.0), blocks(y)))
    assert len(found) == 1
    assert truth[0][0] + 2.0 < found[0].start_s < found[0].end_s < truth[0][1] - 1.5


def test_words_apart_stay_one_phrase(tmp_path):
    """Takes and stream both pause 0.6 s between the words: the match spans the pause, as no VAD region
    or window has to hold the phrase whole."""
    from synth import word
    from kws.enrollment.enroll import build_profile

    def apart(seed, f0=120.0):
        gap = np.zeros(int(0.6 * SR), np.float32)
        y = np.concatenate([gap, word("alpha", f0, seed=seed), gap, word("delta", f0, seed=seed + 1), gap])
        return y + 1e-4 * np.random.default_rng(seed).standard_normal(len(y)).astype(np.float32)

    profile = build_profile([write(tmp_path / f"t{i}.wav", apart(10 * i)) for i in range(5)])
    y = np.concatenate([utterance(["bravo", "omega"], seed=1), apart(77), utterance(["omega"], seed=2)])
    found = list(detect_blocks(StreamDetector({"ad": profile}, Calibration.for_config(DEFAULT)), blocks(y)))
    assert len(found) == 1 and 1.0 < found[0].start_s < found[0].end_s < len(y) / SR - 0.5, found


def test_memory_stays_bounded_on_a_long_stream(personal_profile):
    """Five minutes of talk leave every buffer as large as after one."""
    det = detector(personal_profile, max_delay_s=0.0)
    talk = np.concatenate([utterance(["omega", "bravo"] * 4, seed=2), np.zeros(SR, np.float32)])
    rng, sizes = np.random.default_rng(0), []
    for minute in range(5):
        y = np.resize(talk, 60 * SR) + 1e-3 * rng.standard_normal(60 * SR).astype(np.float32)
        list(detect_blocks(det, blocks(y)))
        sizes.append((len(det.buffer.data), len(det.frames.raw), len(det.pending),
                      max(len(sp.recent) for sp in det.spotters), len(det.noise.power)))
    assert sizes[-1] == sizes[1] and len(det.buffer.data) == det.buffer.capacity < 10 * SR



def test_new_utterance_is_neither_overlapping_nor_within_the_refractory_time():
    assert new_utterance(5.0, 6.0, last_end=3.0, refractory=1.5)
    assert not new_utterance(3.5, 4.0, last_end=3.0, refractory=1.5)    # ends within 1.5 s of the last
    assert not new_utterance(2.5, 6.0, last_end=3.0, refractory=1.5)    # overlaps the last, ends long after


def test_denoised_listener_judges_the_denoised_spans(personal_profile, monkeypatch):
    """With stream.denoise the judge hears each candidate's span from the denoised stream (here a stand-in
    that halves the signal), while the spotter and the veto hear the stream itself."""
    import kws.app.stream as st

    class Halver:
        def push(self, y):
            return 0.5 * y

    monkeypatch.setattr(st, "StreamDenoiser", Halver)
    y, _ = stream(UTTERANCES, seed=3)
    det = detector(personal_profile, denoise="rnnoise", max_delay_s=0.0)
    heard = []
    real = st.span_clip
    monkeypatch.setattr(st, "span_clip", lambda audio, *rest: heard.append(audio) or real(audio, *rest))
    spans = []
    orig = det._score

    def score():
        spans.extend(det.pending)
        return orig()

    monkeypatch.setattr(det, "_score", score)
    list(detect_blocks(det, blocks(y, 1600)))
    assert spans and len(heard) == len(spans)
    for p, h in zip(spans, heard):
        assert h is p.judged and np.allclose(p.judged, 0.5 * p.audio[:len(p.judged)])


def test_noise_matched_listener_matches_the_takes_in_the_streams_own_noise(personal_profile, monkeypatch):
    """With detect.noise_match each candidate's span comes with the stream's recent non-speech (its bed, at
    the bed's level), not the span's own few frames between voices; off, with none."""
    import kws.app.stream as st
    from dataclasses import replace
    y, _ = stream(UTTERANCES, seed=3, noise_db=-45.0)
    real, heard = st.span_clip, []
    monkeypatch.setattr(st, "span_clip", lambda audio, db, cfg, noise=None: heard.append(noise) or real(audio, db, cfg, noise))
    for on in (True, False):
        heard.clear()
        cfg = Config(detect=replace(DEFAULT.detect, noise_match=on), stream=StreamConfig(max_delay_s=0.0))
        det = StreamDetector(Profile.load(personal_profile).phrases, Calibration.for_stream(cfg), cfg=cfg)
        list(detect_blocks(det, blocks(y)))
        assert heard
        if on:
            assert all(0 < len(n) <= cfg.detect.noise_match_max_s * SR for n in heard)
            level = [10 * np.log10(np.mean(n.astype(np.float64) ** 2)) for n in heard]
            assert max(abs(v + 45.0) for v in level) < 3.0
        else:
            assert all(n is None for n in heard)


def test_cohort_and_speaker_parts_wait_and_change_no_decision(personal_profile, monkeypatch):
    """The judge's cohort passes, speaker part and second front end's own pass are made only for candidates
    that could still pass (Calibration.upper, with the shipped judge's capped groups): the same detections,
    with the same scores, as judging every candidate in full."""
    import kws.scoring.detect as dt
    y, _ = stream(UTTERANCES, seed=3)
    made, voiced, second = [], [], []
    real, real_voice, real_second = dt.Deferred.complete, dt.DeferredSpeaker.complete, dt.DeferredSecond.complete
    monkeypatch.setattr(dt.Deferred, "complete", lambda self, idx, cfg: made.append(len(idx)) or real(self, idx, cfg))
    monkeypatch.setattr(dt.DeferredSpeaker, "complete",
                        lambda self, idx, cfg: voiced.append(len(idx)) or real_voice(self, idx, cfg))
    monkeypatch.setattr(dt.DeferredSecond, "complete",
                        lambda self, idx, cfg: second.append(len(idx)) or real_second(self, idx, cfg))
    full = detector(personal_profile, max_delay_s=0.0)
    full.defer = False
    assert full.calibration.caps
    tight = min(d.fused for d in detect_blocks(full, blocks(y))) - 1e-3   # a threshold the weakest one just passes
    lazy, full = detector(personal_profile, max_delay_s=0.0), detector(personal_profile, max_delay_s=0.0)
    full.defer, lazy.threshold, full.threshold = False, tight, tight
    a, b = list(detect_blocks(lazy, blocks(y))), list(detect_blocks(full, blocks(y)))
    assert lazy.defer and a and [d.to_json() for d in a] == [d.to_json() for d in b]
    assert 0 < sum(made) < 2 * lazy.judged   # two front ends' cohort parts, not made for every candidate
    assert 0 < sum(voiced) < lazy.judged     # nor the speaker part
    assert 0 < sum(second) < lazy.judged     # nor the second front end's own pass


def test_the_sample_buffer_keeps_the_last_capacity_samples_whatever_the_appends():
    """SampleBuffer against the plain rule (everything appended, the last `capacity` kept): the same window,
    start, end and cut-outs after appends shorter than, as long as and longer than its capacity."""
    from kws.app.stream import SampleBuffer
    rng = np.random.default_rng(0)
    buf, ref = SampleBuffer(50), np.zeros(0, np.float32)
    for n in [0, 7, 13, 49, 1, 50, 3, 120, 9, *rng.integers(0, 30, 60)]:
        y = rng.standard_normal(int(n)).astype(np.float32)
        buf.append(y)
        ref = np.concatenate([ref, y])[-50:]
        assert np.array_equal(buf.data, ref) and buf.end - buf.start == len(ref)
        if len(ref) > 2:
            a = buf.start + 1
            assert np.array_equal(buf.get(a, buf.end - 1), ref[1:-1])


def test_the_listener_scores_in_its_own_front_end_where_its_judge_was_fitted(personal_profile):
    """StreamConfig.frontend: the listener remakes the profile's templates in its front end from the stored takes
    (predict's profile untouched); with it off, or for a configuration whose judge was fitted in MFCC only,
    it scores in predict's front end."""
    from kws.config import listener_config, with_settings
    from kws.nn.encoder import frontend_fingerprint
    from kws.scoring.calibrate import stream_config
    phrases = Profile.load(personal_profile).phrases
    det = detector(personal_profile)
    assert det.cfg.features.frontend == DEFAULT.stream.frontend == "mfcc-ns"
    for name, p in det.phrases.items():
        assert p.feature_fingerprint == frontend_fingerprint(det.cfg.features) != phrases[name].feature_fingerprint
        assert len(p.templates) == len(phrases[name].templates)
        assert phrases[name].feature_fingerprint == frontend_fingerprint(DEFAULT.features)
    assert detector(personal_profile, frontend="").cfg.features.frontend == "mfcc"
    # the RNNoise listener's judge was fitted in MFCC on cut spans only: it keeps both
    rnn = with_settings(["stream.denoise=rnnoise"])
    assert listener_config(rnn).features.frontend == "mfcc-ns" and stream_config(rnn).features.frontend == "mfcc"
    assert stream_config(rnn).detect.voiceprint == DEFAULT.stream.voiceprint     # its voiceprint either way
    assert stream_config(rnn).stream.span_vad_crop
    # spans are judged whole (v30) only by a judge fitted on whole spans: the default's and gse's (v31), not `both`'s
    assert not DEFAULT.stream.span_vad_crop and not det.cfg.stream.span_vad_crop
    gse = stream_config(with_settings(["detect.second_frontend=gse"]))
    assert gse.features.frontend == "mfcc-ns" and not gse.stream.span_vad_crop
    from kws.scoring.veto import veto_threshold
    judge = Calibration.for_stream(gse)       # its own judge (v31) weighs gse's columns, and its veto is fitted
    assert any(n.startswith("gse_kw_") for n in judge.names) and not any(n.startswith("encoder_kw_") for n in judge.names)
    assert veto_threshold(gse, stream=True) is not None
    # the word-embedding listener (v32, an option): its own judge weighs ewn_cos, its own veto; predict's is untouched
    ewn = with_settings(["stream.word_embedding=true"])
    assert stream_config(ewn).detect.word_embedding and not ewn.detect.word_embedding
    judge = Calibration.for_stream(ewn)
    assert "ewn_cos" in judge.names and any(g[-1] == "ewn_cos" for g, _ in judge.caps)
    assert veto_threshold(ewn, stream=True) is not None
    assert stream_config(with_settings(["stream.voiceprint=both"])).stream.span_vad_crop


def test_the_listener_hears_the_speaker_in_its_own_voiceprint(tiny_task, tmp_path):
    """StreamConfig.voiceprint: a profile enrolled in another voiceprint has its speaker side made again from its
    stored takes, as enrollment makes it in that voiceprint; with "" the listener keeps predict's."""
    from kws.config import with_settings
    from kws.scoring.detect import model_fingerprint
    takes = sorted((tiny_task / "data" / "S001" / "enroll").glob("*.wav"))
    made = {}
    for vp in ("both", "encoder"):
        Profile.enroll(tmp_path / vp, "alpha-delta", takes, cfg=with_settings([f"detect.voiceprint={vp}"]))
        made[vp] = Profile.load(tmp_path / vp, with_settings([f"detect.voiceprint={vp}"])).phrases["alpha-delta"]
    assert DEFAULT.stream.voiceprint == "encoder" and made["both"].voiceprint_kind == "both"
    cfg = with_settings(["detect.voiceprint=both"])
    phrases = Profile.load(tmp_path / "both", cfg).phrases
    listener = StreamDetector(phrases, Calibration.for_stream(cfg), cfg=cfg)
    own = listener.phrases["alpha-delta"]
    assert own.voiceprint_kind == "encoder" == listener.cfg.detect.voiceprint
    assert own.model_fingerprint == model_fingerprint(listener.cfg, listener.cohort) != made["both"].model_fingerprint
    assert np.allclose(own.voiceprint, made["encoder"].voiceprint, atol=2e-3)      # takes kept as float16
    assert own.spk_enroll_mean == pytest.approx(made["encoder"].spk_enroll_mean, abs=2e-3)
    assert len(own.templates) == len(phrases["alpha-delta"].templates)
    kept = with_settings(["detect.voiceprint=both", "stream.voiceprint="])
    same = StreamDetector(phrases, Calibration.for_stream(kept), cfg=kept).phrases["alpha-delta"]
    assert same.voiceprint_kind == "both" and np.array_equal(same.voiceprint, made["both"].voiceprint)


def test_span_clip_cuts_the_span_to_speech_only_when_told():
    """StreamConfig.span_vad_crop (v30: false): the span is framed whole, or cut to the VAD's speech."""
    from dataclasses import replace
    pad = np.zeros(SR // 2, np.float32)
    y = np.concatenate([pad, utterance(["alpha"], seed=45), pad])
    y = y + np.random.default_rng(5).standard_normal(len(y)).astype(np.float32) * 1e-3
    whole = replace(DEFAULT, stream=replace(DEFAULT.stream, span_vad_crop=False))
    cut = replace(DEFAULT, stream=replace(DEFAULT.stream, span_vad_crop=True))
    assert len(span_clip(y, -60.0, whole).audio) == len(y)
    assert len(span_clip(y, -60.0, cut).audio) < len(y)
