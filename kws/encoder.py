"""Neural models that turn audio into embeddings, and where their weights come from.

v1 holds one model: the GE2E speaker encoder (3-layer LSTM over 40 mel bands, 256-d output)
with the weights that ship inside the Resemblyzer wheel (Apache-2.0). Only that weights
file is used; the module below re-implements the network so that Resemblyzer's own
imports (librosa, the old webrtcvad) are not needed.
"""
from __future__ import annotations

import importlib.util
import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

from .errors import WeightsError
from .features import mel_power

log = logging.getLogger(__name__)

PARTIAL_FRAMES = 160   # 1.6 s partial utterances, as GE2E was trained
PARTIAL_STEP = 77      # Resemblyzer's default rate of 1.3 partials per second
TARGET_DBFS = -30.0


class GE2E(nn.Module):
    def __init__(self, n_mels: int = 40, hidden: int = 256, layers: int = 3, dim: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, dim)

    def forward(self, mels: torch.Tensor | nn.utils.rnn.PackedSequence) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        e = torch.relu(self.linear(hidden[-1]))
        return e / (e.norm(dim=1, keepdim=True) + 1e-8)


def ge2e_weights_path() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("the 'resemblyzer' wheel (GE2E weights) is not installed; run ./initialize.sh")
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    if not path.is_file():
        raise WeightsError(f"{path} is missing; reinstall with ./initialize.sh")
    return path


@lru_cache(maxsize=1)
def load_ge2e() -> GE2E:
    path = ge2e_weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    except Exception as e:  # any unpickling/format error means the same thing to the user
        raise WeightsError(f"{path}: cannot load GE2E weights ({e}); reinstall with ./initialize.sh") from e
    model = GE2E()
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity_")})
    model.eval()
    return model


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
    """(N, 256) unit speaker embeddings: each clip's partial embeddings averaged, in one batch."""
    if not wavs:
        return np.zeros((0, 256), np.float32)
    model = model or load_ge2e()
    parts, owner = [], []
    for i, y in enumerate(wavs):
        for p in _partials(ge2e_mels(y)):
            parts.append(torch.from_numpy(np.ascontiguousarray(p)))
            owner.append(i)
    with torch.inference_mode():
        emb = model(pack_sequence(parts, enforce_sorted=False)).numpy()
    out = np.zeros((len(wavs), emb.shape[1]), np.float32)
    np.add.at(out, np.array(owner), emb)
    return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-8)
