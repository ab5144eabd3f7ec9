"""Noise-aware scoring: the clip's conditions as columns, and templates matched in the clip's own noise."""
import numpy as np
import pytest

from dataclasses import replace

from kws.config import DEFAULT as PLAIN
from kws.scoring.detect import CONDITION_NAMES, noise_matched_distances, prepare, score_clips
from kws.scoring.cohort import load_cohort
from kws.scoring.profile import SpeakerProfile
from synth import SR, utterance


DEFAULT = replace(PLAIN, detect=replace(PLAIN.detect, noise_match=True))   # noise matching is a switch


def _with_noise(y: np.ndarray, snr_db: float, seed: int = 5) -> np.ndarray:
    pad = np.zeros(SR // 2, np.float32)
    y = np.concatenate([pad, y, pad])
    n = np.random.default_rng(seed).standard_normal(len(y))
    p = np.mean(y[np.abs(y) > 0.01] ** 2)
    return (y + n * np.sqrt(p / 10 ** (snr_db / 10))).astype(np.float32)


@pytest.fixture(scope="module")
def profile(enrolled) -> SpeakerProfile:
    return SpeakerProfile.load(enrolled)


def test_noisy_clip_is_matched_against_templates_in_its_own_noise(profile):
    clean = utterance(["alpha", "delta"], seed=42)
    noisy = prepare(_with_noise(clean, 3.0), DEFAULT)
    assert noisy.conditions.snr_db < 15 and len(noisy.noise) >= 0.1 * SR
    nm = noise_matched_distances(profile, [noisy, prepare(clean, DEFAULT)], DEFAULT)
    assert np.isfinite(nm[:, 0]).all() and np.isnan(nm[:, 1]).all()      # a clean clip keeps its plain match
    scores = score_clips(profile, [noisy], load_cohort(cfg=DEFAULT.features, voiceprint=DEFAULT.detect.voiceprint),
                         DEFAULT, speaker=False)
    assert scores["kw_nm_gain"][0] > 0        # the phrase in noise sits closer to takes in the same noise
    assert set(CONDITION_NAMES) <= set(scores) and scores["cond_snr"][0] < 15


def test_noise_matching_can_be_switched_off_and_needs_the_takes(profile):
    noisy = prepare(_with_noise(utterance(["alpha", "delta"], seed=43), 3.0), DEFAULT)
    assert np.isnan(noise_matched_distances(profile, [noisy], PLAIN)).all()     # off by default
    assert np.isnan(noise_matched_distances(replace(profile, template_audio=[]), [noisy], DEFAULT)).all()


def test_second_front_end_scores_are_those_of_a_profile_enrolled_in_it(tiny_task):
    """The encoder_kw_* columns equal the kw_* columns a profile enrolled under the encoder front end gives
    (templates from the stored takes, as saved: float16), and the MFCC columns are untouched by them."""
    from kws.config import with_frontend
    from kws.enrollment.enroll import build_profile
    from kws.scoring.detect import second_profile
    from kws.signal.audio import list_wavs, read_audio
    takes = list_wavs(tiny_task / "data" / "S001" / "enroll")
    tests = list_wavs(tiny_task / "data" / "S001" / "test")
    both = replace(PLAIN, detect=replace(PLAIN.detect, second_frontend="encoder"))   # mfcc, plus the encoder
    assert both.second_features().frontend == "encoder"
    enc = replace(with_frontend("encoder"), detect=both.detect)
    assert enc.second_features() is None                  # a front end is not its own second
    off = replace(both, detect=replace(both.detect, second_frontend=""))
    p_mfcc = build_profile(takes, both)
    p_mfcc.template_audio = [np.asarray(a, np.float16).astype(np.float32) for a in p_mfcc.template_audio]
    p_enc = build_profile(takes, enc)
    p_enc.template_audio = []
    cohort = load_cohort(cfg=both.features, voiceprint=both.detect.voiceprint)
    s_both = score_clips(p_mfcc, [prepare(read_audio(t), both) for t in tests], cohort, both, speaker=False)
    s_off = score_clips(p_mfcc, [prepare(read_audio(t), off) for t in tests], cohort, off, speaker=False)
    s_enc = score_clips(p_enc, [prepare(read_audio(t), enc) for t in tests],
                        load_cohort(cfg=enc.features, voiceprint=enc.detect.voiceprint), enc, speaker=False)
    for name in ("kw_z", "kw_t", "kw_rel", "kw_warp", "kw_half"):
        assert np.allclose(s_both[f"encoder_{name}"], s_enc[name], atol=2e-3), name
        assert np.array_equal(s_both[name], s_off[name])
    assert not any(n.startswith("encoder_") for n in s_off)
    assert second_profile(p_mfcc, both)[0] is second_profile(p_mfcc, both)[0]      # made once per profile
    # enrollment stored the second front end's keyword side; made again from the takes, it is the same
    stored = second_profile(replace(p_mfcc, template_audio=[]), both)[0]
    remade = second_profile(replace(p_mfcc, second=None), both)[0]
    assert all(np.array_equal(a, b) for a, b in zip(stored.all_templates(), remade.all_templates()))
    assert np.array_equal(stored.kw_cohort_mean, remade.kw_cohort_mean) and stored.kw_enroll_mean == remade.kw_enroll_mean
    stale = replace(p_mfcc, second=replace(p_mfcc.second, fingerprint="other weights"))
    assert np.array_equal(second_profile(stale, both)[0].kw_cohort_std, remade.kw_cohort_std)   # made again
    with pytest.raises(Exception, match="keeps no enrollment takes"):
        second_profile(replace(p_mfcc, template_audio=[], second=None), both)


def test_the_trunk_voiceprint_enrolls_and_scores_and_is_its_own_kind(tiny_task):
    """detect.voiceprint=trunk: a 30-value voiceprint, the enrolled voice saying the phrase above another voice
    on the whole-clip speaker score, and a profile enrolled with it refused under the default voiceprint."""
    from kws.enrollment.enroll import build_profile
    from kws.errors import ProfileError
    from kws.scoring.detect import check_compatible
    from kws.signal.audio import list_wavs, read_audio
    trunk = replace(PLAIN, detect=replace(PLAIN.detect, voiceprint="trunk"))
    p = build_profile(list_wavs(tiny_task / "data" / "S001" / "enroll"), trunk)
    assert p.voiceprint_kind == "trunk" and p.voiceprint.shape == (30,)
    cohort = load_cohort(cfg=trunk.features, voiceprint="trunk")
    tests = list_wavs(tiny_task / "data" / "S001" / "test")          # the last two: another voice
    s = score_clips(p, [prepare(read_audio(t), trunk) for t in tests], cohort, trunk, speaker=True)
    assert np.isfinite(s["spk_seg_z"]).all() and s["spk_all_z"][:3].min() > s["spk_all_z"][6:].max()
    with pytest.raises(ProfileError, match="trunk voiceprint"):
        check_compatible(p, PLAIN, "profile", load_cohort(cfg=PLAIN.features, voiceprint="encoder"))


def test_deferred_parts_complete_to_the_full_scores(profile):
    """score_and_locate(defer=True) leaves exactly the columns of deferred_groups unknown (both front ends'
    cohort parts, the speaker part, the second front end's own pass), returns one part per group in that
    order, and each part's complete() makes its group's columns as the full pass does, for any subset of
    the clips (a later part only for clips an earlier one was made for, as the listener asks)."""
    from kws.scoring.detect import deferred_groups, score_and_locate
    cohort = load_cohort(cfg=DEFAULT.features, voiceprint=DEFAULT.detect.voiceprint)
    clips = [prepare(_with_noise(utterance(w, seed=s), 5.0, seed=s), DEFAULT)
             for s, w in ((1, ["alpha", "delta"]), (2, ["bravo", "omega"]), (3, ["alpha", "delta"]))]
    full, best, none = score_and_locate(profile, clips, cohort, DEFAULT)
    lazy, best2, later = score_and_locate(profile, clips, cohort, DEFAULT, defer=True)
    groups = [tuple(n for n in g if n in full) for g in deferred_groups(DEFAULT.detect.second_frontend)]
    waiting = {n for g in groups for n in g}
    assert {"spk_seg_z", "spk_rel", "encoder_kw_z", "encoder_kw_t"} <= waiting and "kw_z" not in waiting
    assert none == [] and best == best2 and len(later) == len(groups) == 4
    assert {n for n, v in lazy.items() if np.isnan(v).all()} == waiting
    assert all(np.array_equal(lazy[n], full[n], equal_nan=True) for n in set(full) - waiting)
    for d, g, idx in zip(later, groups, ([2, 0, 1], [2, 0], [2, 0], [0])):
        made = d.complete(np.array(idx), DEFAULT)
        assert set(made) == set(g)
        for n, v in made.items():
            # (to float rounding: BLAS may round a product differently for another batch of clips)
            assert np.allclose(v, full[n][idx], rtol=1e-6, atol=1e-9), n


def test_the_word_embedding_part_waits_last_and_completes_to_the_full_scores(profile, monkeypatch):
    """DetectConfig.word_embedding: the ewn_* columns are made last by the listener (DeferredWord), for any subset
    of the clips, as the full pass makes them. The embedding itself is stood in for by a deterministic one here
    (the model is the optional `ewn` extra; tests/test_efficientword.py checks it where installed)."""
    from dataclasses import replace
    from kws.nn import efficientword
    from kws.scoring.detect import WORD_NAMES, DeferredWord, deferred_groups, score_and_locate
    monkeypatch.setattr(efficientword, "embed", lambda y: np.abs(np.fft.rfft(np.asarray(y, np.float64), 64))[None, :]
                        / (np.linalg.norm(np.abs(np.fft.rfft(np.asarray(y, np.float64), 64))) + 1e-9))
    cfg = replace(DEFAULT, detect=replace(DEFAULT.detect, word_embedding=True))
    cohort = load_cohort(cfg=cfg.features, voiceprint=cfg.detect.voiceprint)
    clips = [prepare(_with_noise(utterance(w, seed=s), 5.0, seed=s), cfg)
             for s, w in ((1, ["alpha", "delta"]), (2, ["bravo", "omega"]))]
    full, _, _ = score_and_locate(profile, clips, cohort, cfg)
    lazy, _, later = score_and_locate(profile, clips, cohort, cfg, defer=True)
    assert deferred_groups(cfg.detect.second_frontend, True)[-1] == WORD_NAMES == ("ewn_cos", "ewn_gap")
    assert all(np.isfinite(full[n]).all() and np.isnan(lazy[n]).all() for n in WORD_NAMES)
    assert isinstance(later[-1], DeferredWord)
    made = later[-1].complete(np.array([1]), cfg)
    assert all(np.allclose(made[n], full[n][[1]]) for n in WORD_NAMES)
    off, _, _ = score_and_locate(profile, clips, cohort, DEFAULT)
    assert not set(WORD_NAMES) & set(off)          # off by default: no column, no model loaded


def test_prepare_crops_to_speech_unless_told_to_keep_the_clip_whole():
    """The listener's stream.span_vad_crop=false: the whole span is framed, its conditions are the same."""
    y = _with_noise(utterance(["alpha", "delta"], seed=44), 20.0)
    cropped, whole = prepare(y, PLAIN), prepare(y, PLAIN, crop=False)
    assert cropped.has_speech and whole.has_speech
    assert len(cropped.audio) < len(y) and len(whole.audio) == len(y)
    assert len(whole.frames) > len(cropped.frames)
    assert whole.conditions == cropped.conditions

