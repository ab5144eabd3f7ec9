"""Neural models that turn audio into embeddings, and where their weights come from. All run in
numpy, so predict never imports torch (~1.3 s and ~500 MB per process).

- GE2E speaker encoder (3-layer LSTM over 40 mel bands, 256-d output) with the weights that
  ship inside the Resemblyzer wheel (Apache-2.0), read from its torch checkpoint by
  kws.nn.torchfile without torch. Only the ge2e and both voiceprints need it (not the default).
- Google's speech_embedding (kws.nn.speech_embedding), the "gse" keyword front end's frames.
- The project's own multi-task encoder (kws/model.py, trained by scripts/train_encoder.py):
  keyword frames for DTW and a voiceprint, from ``pretrained/encoder.npz``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from kws.nn import torchfile
from kws.nn.speech_embedding import load_speech_embedding, speech_embedding
from kws.config import FRONTENDS, GSE_PAD_S, PRETRAINED_DIR, SAMPLE_RATE, VOICEPRINTS, FeatureConfig
from kws.errors import WeightsError
from kws.signal.vectors import EPS, unit
from kws.signal.features import encoder_input, mel_power, mfcc_frames, stack

log = logging.getLogger(__name__)

PARTIAL_FRAMES = 160   # 1.6 s partial utterances, as GE2E was trained
PARTIAL_STEP = 77      # Resemblyzer's default rate of 1.3 partials per second
TARGET_DBFS = -30.0
LAYERS, HIDDEN, DIM = 3, 256, 256
CHUNK = 16             # partials per LSTM pass: bounds memory (~10 MB of gate activations; 64 peaked 110 MB higher, no faster)


@dataclass(frozen=True)
class GE2E:
    """LSTM weights (gate blocks ordered i, f, o, g) and the output projection."""
    w_ih: tuple[np.ndarray, ...]   # per layer (4H, in)
    w_hh: tuple[np.ndarray, ...]   # per layer (4H, H)
    bias: tuple[np.ndarray, ...]   # per layer (4H,): b_ih + b_hh
    proj_w: np.ndarray             # (DIM, H)
    proj_b: np.ndarray             # (DIM,)


GE2E_WHEEL = "resemblyzer==0.1.4"
GE2E_INSTALL = f"pip install --no-deps {GE2E_WHEEL} (./initialize.sh does)"


def ge2e_weights_path() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"the GE2E voiceprint needs the weights of the Resemblyzer wheel: {GE2E_INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    if not path.is_file():
        raise WeightsError(f"{path} is missing; reinstall: {GE2E_INSTALL}")
    return path


@lru_cache(maxsize=1)
def ge2e_wheel_sha() -> str:
    """Of the wheel's GE2E weights, which the tuned layers (GE2E_TUNED_FILE) were tuned from."""
    from kws.safefile import file_digest
    return file_digest(ge2e_weights_path())[:10]


@lru_cache(maxsize=1)
def load_ge2e_wheel() -> GE2E:
    """The wheel's checkpoint as Resemblyzer ships it, read by kws.nn.torchfile (no torch; ~0.1 s)."""
    source = ge2e_weights_path()
    try:
        state = torchfile.load(source)["model_state"]
        w = {k.replace(".", "_"): np.asarray(v, np.float32) for k, v in state.items()}
        return GE2E(w_ih=tuple(_ifog(w[f"lstm_weight_ih_l{i}"]) for i in range(LAYERS)),
                    w_hh=tuple(_ifog(w[f"lstm_weight_hh_l{i}"]) for i in range(LAYERS)),
                    bias=tuple(_ifog(w[f"lstm_bias_ih_l{i}"] + w[f"lstm_bias_hh_l{i}"]) for i in range(LAYERS)),
                    proj_w=w["linear_weight"], proj_b=w["linear_bias"])
    except (OSError, torchfile.CheckpointError, KeyError, TypeError) as e:
        raise WeightsError(f"{source}: cannot read the GE2E weights ({e}); reinstall: {GE2E_INSTALL}") from e


# GE2E's upper layers tuned here to hear through noise (scripts/train_voiceprint.py): the GE2E every voiceprint
# uses. Noisy speech (0-10 dB) then lands nearer its clean self: dev EER 27 -> 14 % (docs/results.md, v9).
GE2E_TUNED_FILE = "ge2e_tuned.npz"
_TUNED_REBUILD = "scripts/train_voiceprint.py"


def _tuned_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise WeightsError(f"{path}: cannot read the tuned GE2E layers ({e}); restore pretrained/ from git "
                           f"or rebuild with {_TUNED_REBUILD}") from e


@lru_cache(maxsize=2)
def load_ge2e(path: str | None = None) -> GE2E:
    """GE2E as the voiceprints use it: the wheel's weights with the tuned layers of GE2E_TUNED_FILE in their place."""
    base = load_ge2e_wheel()
    source = Path(path) if path else PRETRAINED_DIR / GE2E_TUNED_FILE
    z = _tuned_arrays(source)
    if str(z.get("ge2e_sha", "")) != ge2e_wheel_sha():
        raise WeightsError(f"{source}: tuned from GE2E weights {z.get('ge2e_sha')}, the wheel's are {ge2e_wheel_sha()}; "
                           f"rebuild with {_TUNED_REBUILD}")
    try:
        first = int(z["first_layer"])
        tuned = {name: tuple(np.asarray(z[f"{name}_{i}"], np.float32) if i >= first else w for i, w in enumerate(old))
                 for name, old in (("w_ih", base.w_ih), ("w_hh", base.w_hh), ("bias", base.bias))}
        model = GE2E(**tuned, proj_w=np.asarray(z["proj_w"], np.float32), proj_b=np.asarray(z["proj_b"], np.float32))
    except (KeyError, ValueError) as e:
        raise WeightsError(f"{source}: incomplete tuned GE2E layers ({e}); rebuild with {_TUNED_REBUILD}") from e
    if any(a.shape != b.shape for a, b in zip((*model.w_ih, *model.w_hh, *model.bias, model.proj_w, model.proj_b),
                                              (*base.w_ih, *base.w_hh, *base.bias, base.proj_w, base.proj_b))):
        raise WeightsError(f"{source}: tuned layers of other shapes than GE2E's; rebuild with {_TUNED_REBUILD}")
    return model


@lru_cache(maxsize=1)
def ge2e_sha() -> str:
    """Of the GE2E weights the voiceprints use (the wheel's and the tuned layers): profiles whose voiceprints
    other weights made are refused."""
    from kws.safefile import file_digest
    return f"{ge2e_wheel_sha()}+{file_digest(PRETRAINED_DIR / GE2E_TUNED_FILE)[:10]}"


def _ifog(w: np.ndarray) -> np.ndarray:
    """PyTorch's gate blocks (i, f, g, o) reordered to (i, f, o, g): the three sigmoid gates side by side."""
    i, f, g, o = np.split(w, 4, axis=0)
    return np.ascontiguousarray(np.concatenate([i, f, o, g], axis=0))


def lstm_last_hidden(model: GE2E, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(T, N, in) padded, time-major sequences -> (N, H) top-layer hidden state at each sequence's last frame.

    Padding after a sequence's end never reaches its last state, so one padded batch serves all.
    Gates are reordered to (i, f, o, g) so one tanh pass makes all three sigmoids; buffers are
    reused in place, as the per-step element-wise work costs more than the matrix products.
    """
    steps, n, _ = x.shape
    seq = x
    for w_ih, w_hh, b in zip(model.w_ih, model.w_hh, model.bias):
        gates_in = (seq.reshape(steps * n, -1) @ w_ih.T + b).reshape(steps, n, 4 * HIDDEN)
        h = np.zeros((n, HIDDEN), np.float32)
        c = np.zeros((n, HIDDEN), np.float32)
        g = np.empty((n, 4 * HIDDEN), np.float32)
        tmp = np.empty((n, HIDDEN), np.float32)
        out = np.empty((steps, n, HIDDEN), np.float32)
        w_hh_t = np.ascontiguousarray(w_hh.T)
        sig, cell = g[:, :3 * HIDDEN], g[:, 3 * HIDDEN:]
        for t in range(steps):
            np.matmul(h, w_hh_t, out=g)
            g += gates_in[t]
            sig *= 0.5                          # sigmoid(x) = 0.5 + 0.5 * tanh(x / 2), overflow-free
            np.tanh(sig, out=sig)
            sig *= 0.5
            sig += 0.5
            np.tanh(cell, out=cell)
            c *= g[:, HIDDEN:2 * HIDDEN]
            np.multiply(g[:, :HIDDEN], cell, out=tmp)
            c += tmp
            np.tanh(c, out=h)
            h *= g[:, 2 * HIDDEN:3 * HIDDEN]
            out[t] = h
        seq = out
    return seq[lengths - 1, np.arange(n)]


def embed_partials(model: GE2E, parts: list[np.ndarray]) -> np.ndarray:
    """(N, DIM) unit embeddings of mel partials, in length-sorted chunks to waste few padded steps."""
    order = np.argsort([len(p) for p in parts], kind="stable")
    out = np.zeros((len(parts), DIM), np.float32)
    for c in range(0, len(parts), CHUNK):
        idx = order[c:c + CHUNK]
        lengths = np.array([len(parts[i]) for i in idx])
        x = np.zeros((lengths.max(), len(idx), parts[idx[0]].shape[1]), np.float32)
        for k, i in enumerate(idx):
            x[:lengths[k], k] = parts[i]
        e = np.maximum(lstm_last_hidden(model, x, lengths) @ model.proj_w.T + model.proj_b, 0.0)
        out[idx] = unit(e)
    return out


def ge2e_mels(y: np.ndarray) -> np.ndarray:
    """(T, 40) mel power frames, volume-normalised as Resemblyzer does (raise quiet audio to -30 dBFS)."""
    rms_db = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) + 1e-12)
    if rms_db < TARGET_DBFS:
        y = y * 10 ** ((TARGET_DBFS - rms_db) / 20)
    return mel_power(y, 40, 400, 160, slaney=True)


def _partials(mels: np.ndarray) -> list[np.ndarray]:
    if len(mels) <= PARTIAL_FRAMES:
        return [mels]
    starts = list(range(0, len(mels) - PARTIAL_FRAMES + 1, PARTIAL_STEP))
    if len(mels) - (starts[-1] + PARTIAL_FRAMES) > PARTIAL_FRAMES // 4:
        starts.append(len(mels) - PARTIAL_FRAMES)
    return [mels[s:s + PARTIAL_FRAMES] for s in starts]


def embed_speakers(wavs: list[np.ndarray], model: GE2E | None = None) -> np.ndarray:
    """(N, 256) unit speaker embeddings: each clip's partial embeddings averaged."""
    if not wavs:
        return np.zeros((0, DIM), np.float32)
    model = model or load_ge2e()
    parts, owner = [], []
    for i, y in enumerate(wavs):
        for p in _partials(ge2e_mels(y)):
            parts.append(np.ascontiguousarray(p, np.float32))
            owner.append(i)
    emb = embed_partials(model, parts)
    out = np.zeros((len(wavs), DIM), np.float32)
    np.add.at(out, np.array(owner), emb)
    return unit(out)


# --- the project's multi-task encoder ---------------------------------------------------------

ENCODER_FILE = "encoder.npz"


@dataclass(frozen=True)
class MultiTask:
    arrays: dict            # exported by kws.training.model.export_arrays
    dilations: tuple[int, ...]
    sha: str                # of the weights file: cohorts built with other weights are refused


@lru_cache(maxsize=2)
def load_multitask(path: str | None = None) -> MultiTask:
    p = Path(path) if path else PRETRAINED_DIR / ENCODER_FILE
    if not p.is_file():
        raise WeightsError(f"{p} is missing; restore pretrained/ from git or train it with scripts/train_encoder.py")
    try:
        data = p.read_bytes()   # read once: hashed for the fingerprint, then parsed
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        dilations = tuple(int(d) for d in arrays.pop("dilations"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise WeightsError(f"{p}: damaged encoder weights ({e}); restore it from git") from e
    return MultiTask(arrays, dilations, hashlib.sha1(data).hexdigest()[:10])


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, dilation: int) -> np.ndarray:
    """(T, C_in) -> (T, C_out): a 'same' convolution with reflect padding, as speechbrain's Conv1d."""
    k = w.shape[2]
    pad = dilation * (k - 1) // 2
    if pad:
        x = np.pad(x, ((pad, pad), (0, 0)), mode="reflect" if len(x) > pad else "edge")
    t = len(x) - 2 * pad
    out = np.zeros((t, w.shape[0]), np.float32) + b
    for j in range(k):
        out += x[j * dilation: j * dilation + t] @ w[:, :, j].T
    return out


def _block(m: MultiTask, x: np.ndarray, name: str, dilation: int) -> np.ndarray:
    a = m.arrays
    return np.maximum(_conv(x, a[f"{name}_w"], a[f"{name}_b"], dilation), 0.0) * a[f"{name}_scale"] + a[f"{name}_shift"]


def trunk_layers(m: MultiTask, frames: np.ndarray) -> Iterator[np.ndarray]:
    """Each trunk block's (T, channels) output in turn, the last being multitask_trunk's."""
    h = frames.astype(np.float32)
    for i, d in enumerate(m.dilations):
        h = _block(m, h, f"trunk{i}", d)
        yield h


def multitask_trunk(m: MultiTask, frames: np.ndarray) -> np.ndarray:
    """(T, n_mels) normalised log-mel -> (T, channels) shared features."""
    for h in trunk_layers(m, frames):
        pass
    return h


# The trunks of the last inputs: with the second keyword front end on, a clip's crop goes through the
# trunk for its keyword frames and again for its whole-clip voiceprint; the second pass is a lookup.
_TRUNKS: dict[tuple[str, bytes], np.ndarray] = {}
TRUNK_CACHE = 256            # inputs kept: one batch of clips (DetectConfig.batch_files) and their segments
# ... and bytes kept: one batch's audio (DetectConfig.batch_seconds, 300 s) makes ~15 MB of trunks, so
# long inputs cannot make the cache grow past the memory bounds of docs/robustness.md.
TRUNK_CACHE_BYTES = 32 << 20


def cached_trunk(m: MultiTask, frames: np.ndarray) -> np.ndarray:
    """multitask_trunk(m, frames), computed once for inputs seen lately (bit-identical either way)."""
    frames = np.ascontiguousarray(frames, np.float32)
    key = (m.sha, hashlib.sha1(frames.tobytes() + str(frames.shape).encode()).digest())
    if (hit := _TRUNKS.get(key)) is not None:
        return hit
    out = multitask_trunk(m, frames)
    if out.nbytes <= TRUNK_CACHE_BYTES:
        while _TRUNKS and (len(_TRUNKS) >= TRUNK_CACHE
                           or sum(t.nbytes for t in _TRUNKS.values()) + out.nbytes > TRUNK_CACHE_BYTES):
            _TRUNKS.pop(next(iter(_TRUNKS)))      # the oldest
        _TRUNKS[key] = out
    return out


def multitask_keyword_frames(m: MultiTask, trunk: np.ndarray) -> np.ndarray:
    """(T, kw_dim) unit-length keyword frames."""
    kw = trunk @ m.arrays["kw_w"][:, :, 0].T + m.arrays["kw_b"]
    return unit(kw)


def multitask_voiceprint(m: MultiTask, trunk: np.ndarray) -> np.ndarray:
    """(spk_dim,) unit speaker embedding: statistics pooling over the whole input."""
    s = _block(m, trunk, "spk", 1)
    return _voiceprint_head(m, s.mean(axis=0), s.var(axis=0))


def _voiceprint_head(m: MultiTask, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    stats = np.concatenate([mean, np.sqrt(np.maximum(var, 1e-5))])
    e = stats @ m.arrays["spk_out_w"].T + m.arrays["spk_out_b"]
    # Not vectors.unit: norm(e) of a vector is a dot product, whose rounding differs from unit()'s
    # reduction in the last bit, and the shipped cohort voiceprints and calibrations hold these bits.
    return (e / (np.linalg.norm(e) + EPS)).astype(np.float32)


VOICEPRINT_CHUNK = 8192   # log-mel frames per encoder pass: 82 s, every platform clip in one pass


def _trunk_through(m: MultiTask, frames: np.ndarray, blocks: int) -> np.ndarray:
    """The output of the first `blocks` trunk blocks (all of them: multitask_trunk)."""
    for i, h in enumerate(trunk_layers(m, frames)):
        if i + 1 == blocks:
            return h
    raise ValueError(f"the trunk has {len(m.dilations)} blocks, not {blocks}")


def trunk_pieces(m: MultiTask, frames: np.ndarray, blocks: int | None = None) -> Iterator[np.ndarray]:
    """multitask_trunk(m, frames) (or the output of its first `blocks` blocks) in bounded memory, as
    consecutive pieces: inputs longer than VOICEPRINT_CHUNK frames go through the trunk in overlapping
    chunks (exact but for float rounding: the context each layer sees is kept); shorter ones in one pass,
    cached for the whole trunk."""
    n = len(m.dilations) if blocks is None else blocks
    if len(frames) <= VOICEPRINT_CHUNK:
        yield cached_trunk(m, frames) if n == len(m.dilations) else _trunk_through(m, frames, n)
        return
    ctx = sum(d * (m.arrays[f"trunk{i}_w"].shape[2] - 1) // 2 for i, d in enumerate(m.dilations[:n]))
    for a in range(0, len(frames), VOICEPRINT_CHUNK):
        b = min(a + VOICEPRINT_CHUNK, len(frames))
        lo, hi = max(0, a - ctx), min(len(frames), b + ctx)
        yield _trunk_through(m, frames[lo:hi], n)[a - lo: a - lo + b - a]


def multitask_voiceprint_of(m: MultiTask, frames: np.ndarray) -> np.ndarray:
    """multitask_voiceprint(m, multitask_trunk(m, frames)) in bounded memory (trunk_pieces); the statistics
    of a long input are pooled as running sums."""
    if len(frames) <= VOICEPRINT_CHUNK:
        return multitask_voiceprint(m, cached_trunk(m, frames))
    total, squares, n = 0.0, 0.0, 0
    for piece in trunk_pieces(m, frames):
        s = _block(m, piece, "spk", 1).astype(np.float64)
        total, squares, n = total + s.sum(axis=0), squares + (s ** 2).sum(axis=0), n + len(s)
    mean = total / n
    return _voiceprint_head(m, mean.astype(np.float32), (squares / n - mean ** 2).astype(np.float32))


TRUNK_VOICEPRINT_FILE = "voiceprint_trunk.npz"


@dataclass(frozen=True)
class TrunkProjection:
    """The "trunk" voiceprint's projection (scripts/fit_trunk_voiceprint.py): the mean and std over time of
    one trunk block, centred and projected by an LDA fitted on train-split speakers."""
    blocks: int                # the block whose output is pooled (1-based: 2 = the second)
    mean: np.ndarray           # (2 * channels,)
    projection: np.ndarray     # (2 * channels, dims)
    sha: str                   # of the file, with the encoder's: what the cohort and profiles were made with


@lru_cache(maxsize=2)
def load_trunk_projection(encoder_sha: str, path: str | None = None) -> TrunkProjection:
    p = Path(path) if path else PRETRAINED_DIR / TRUNK_VOICEPRINT_FILE
    if not p.is_file():
        raise WeightsError(f"{p} is missing: the trunk voiceprint needs it; make it with scripts/fit_trunk_voiceprint.py")
    try:
        data = p.read_bytes()
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            blocks, mean, proj, made_with = int(z["blocks"]), z["mean"], z["projection"], str(z["encoder_sha"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise WeightsError(f"{p}: damaged trunk voiceprint ({e}); restore it from git") from e
    if made_with != encoder_sha:
        raise WeightsError(f"{p}: fitted on encoder weights {made_with}, pretrained/encoder.npz is {encoder_sha}; "
                           "refit it with scripts/fit_trunk_voiceprint.py")
    sha = f"{encoder_sha}+{hashlib.sha1(data).hexdigest()[:10]}"
    return TrunkProjection(blocks, mean.astype(np.float32), proj.astype(np.float32), sha)


def trunk_statistics(m: MultiTask, frames: np.ndarray, blocks: int) -> np.ndarray:
    """(2 * channels,) mean and std over time of the first `blocks` trunk blocks' output, pooled as
    running sums over trunk_pieces."""
    total, squares, n = 0.0, 0.0, 0
    for h in trunk_pieces(m, frames, blocks):
        h = h.astype(np.float64)
        total, squares, n = total + h.sum(axis=0), squares + (h ** 2).sum(axis=0), n + len(h)
    mean = total / n
    return np.concatenate([mean, np.sqrt(np.maximum(squares / n - mean ** 2, 0.0))]).astype(np.float32)


def trunk_voiceprint_of(m: MultiTask, p: TrunkProjection, frames: np.ndarray) -> np.ndarray:
    """(dims,) unit speaker embedding: a trunk block's statistics through the LDA projection."""
    return unit((trunk_statistics(m, frames, p.blocks) - p.mean) @ p.projection).astype(np.float32)


def keyword_frames(y: np.ndarray, cfg: FeatureConfig = FeatureConfig(), added: np.ndarray | None = None) -> np.ndarray:
    """The frames DTW matches, from the configured front end; added: a mel power spectrum added to every
    frame first (features.logmel), the expected effect of a noise."""
    if cfg.frontend == "mfcc":
        return mfcc_frames(y, cfg, added)
    if cfg.frontend == "mfcc-ns":
        if added is not None:
            raise ValueError("the mfcc-ns front end takes its own noise out: noise-matched templates need mfcc or encoder")
        return mfcc_frames(y, cfg, floor_out=True)
    if cfg.frontend == "gse":
        if added is not None:
            raise ValueError("the gse front end takes audio only: noise-matched templates need mfcc or encoder")
        pad = np.zeros(int(GSE_PAD_S * SAMPLE_RATE), np.float32)
        return speech_embedding(np.concatenate([pad, np.asarray(y, np.float32), pad]))
    if cfg.frontend != "encoder":
        raise ValueError(f"unknown front end {cfg.frontend!r}; use one of {', '.join(FRONTENDS)}")
    return encoder_keyword_frames(load_multitask(), y, cfg, added)


def encoder_keyword_frames(m: MultiTask, y: np.ndarray, cfg: FeatureConfig, added: np.ndarray | None = None) -> np.ndarray:
    """keyword_frames of the encoder front end under weights m (scripts measure other weights with it)."""
    # A long crop goes through the trunk piece by piece (trunk_pieces), as the voiceprint does.
    kw = [multitask_keyword_frames(m, piece) for piece in trunk_pieces(m, encoder_input(y, cfg, added))]
    return stack(kw[0] if len(kw) == 1 else np.concatenate(kw), cfg.stack).astype(np.float32)




def speaker_embeddings(wavs: list[np.ndarray], kind: str, cfg: FeatureConfig) -> np.ndarray:
    """(N, E) unit utterance embeddings of the configured voiceprint: GE2E, the multi-task encoder's
    speaker head, both concatenated (unit halves, so one cosine is the mean of the two), or the
    encoder's trunk statistics projected (trunk_voiceprint_of)."""
    if kind not in VOICEPRINTS:
        raise ValueError(f"unknown voiceprint {kind!r}; use one of {', '.join(VOICEPRINTS)}")
    if kind == "ge2e":
        return embed_speakers(wavs)
    m = load_multitask()
    if kind == "trunk":
        p = load_trunk_projection(m.sha)
        return np.array([trunk_voiceprint_of(m, p, encoder_input(y, cfg)) for y in wavs],
                        np.float32).reshape(len(wavs), p.projection.shape[1])
    enc = encoder_voiceprints(m, wavs, cfg)
    if kind == "encoder":
        return enc
    return _both(embed_speakers(wavs), enc)


def _both(ge2e: np.ndarray, enc: np.ndarray) -> np.ndarray:
    """The "both" voiceprint: GE2E's and the encoder's unit embeddings side by side, scaled to unit length."""
    return (np.concatenate([ge2e, enc], axis=1) / np.sqrt(2)).astype(np.float32)


def segment_and_clip_embeddings(segments: list[np.ndarray], clips: list[np.ndarray], kind: str,
                                cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """The detector's two speaker views of each clip: its matched segment's embedding and the whole clip's.
    For "both", GE2E hears only the segment, and the clip's GE2E half is the segment's: GE2E's whole-clip
    partials cost twice the segments' (docs/results.md, v21)."""
    if kind != "both":
        emb = speaker_embeddings(segments + clips, kind, cfg)
        return emb[:len(segments)], emb[len(segments):]
    g = embed_speakers(segments)
    enc = encoder_voiceprints(load_multitask(), segments + clips, cfg)
    return _both(g, enc[:len(segments)]), _both(g, enc[len(segments):])


def encoder_voiceprints(m: MultiTask, wavs: list[np.ndarray], cfg: FeatureConfig) -> np.ndarray:
    """(N, E) the multi-task encoder's speaker embeddings under weights m (scripts measure other weights with it)."""
    return np.array([multitask_voiceprint_of(m, encoder_input(y, cfg)) for y in wavs],
                    np.float32).reshape(len(wavs), m.arrays["spk_out_w"].shape[0])


def frontend_fingerprint(cfg: FeatureConfig = FeatureConfig()) -> str:
    """Feature settings, and the encoder weights when they make the frames: profiles and cohorts
    made under another fingerprint do not match these frames."""
    if cfg.frontend == "gse":
        return f"gse+{load_speech_embedding().sha}"   # its frames depend on its weights alone
    return cfg.fingerprint() + (f"+{load_multitask().sha}" if cfg.frontend == "encoder" else "")
