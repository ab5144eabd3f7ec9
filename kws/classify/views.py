"""A clip as fixed-size vectors ("views"): the frozen representations that kws classify and scripts/probe.py
put a linear model on. Grouped by what computing them costs, cheapest first, so an anytime learner can
use the cheap group while the dearer ones are still being computed.

- "mfcc": the mean and std over time of the first keyword front end's MFCC frames (~0.4 ms a second of audio);
- "encoder": the mean and std of each of the multi-task encoder's four trunk blocks, its speaker head
  (the voiceprint the speaker check uses) and the mean and std of its keyword head (~2 ms, one pass);
- "ge2e": Resemblyzer's GE2E speaker embedding (~9 ms).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from kws.config import DEFAULT, Config
from kws.nn.encoder import embed_speakers, load_ge2e, load_multitask, multitask_keyword_frames, multitask_voiceprint, trunk_layers
from kws.signal.features import cmvn, encoder_input, mfcc

GROUPS: dict[str, tuple[str, ...]] = {
    "mfcc": ("mfcc stats",),
    "encoder": ("encoder trunk 1", "encoder trunk 2", "encoder trunk 3", "encoder trunk 4",
                "encoder speaker head", "encoder keyword head"),
    "ge2e": ("GE2E",),
}
VIEWS = tuple(v for views in GROUPS.values() for v in views)


def group_of(view: str) -> str:
    for g, views in GROUPS.items():
        if view in views:
            return g
    raise ValueError(f"unknown view {view!r}; views: {', '.join(VIEWS)}")


def _stats(frames: np.ndarray) -> np.ndarray:
    return np.concatenate([frames.mean(0), frames.std(0)]).astype(np.float32)


class Embedder:
    """Computes the views of clips (float32 mono 16 kHz); the models load on first use, once."""

    def __init__(self, cfg: Config = DEFAULT):
        self.cfg = cfg
        self._multitask = None
        self._ge2e = None

    def group(self, name: str, y: np.ndarray) -> dict[str, np.ndarray]:
        """The views of one group for one clip."""
        return {"mfcc": self._mfcc, "encoder": self._encoder, "ge2e": self._ge2e_one}[name](y)

    def _mfcc(self, y: np.ndarray) -> dict[str, np.ndarray]:
        f = self.cfg.features
        return {"mfcc stats": _stats(cmvn(mfcc(y, f), f.cmvn_frames))}

    def _encoder(self, y: np.ndarray) -> dict[str, np.ndarray]:
        if self._multitask is None:
            self._multitask = load_multitask()
        m, out = self._multitask, {}
        for i, h in enumerate(trunk_layers(m, encoder_input(y, self.cfg.features))):
            out[f"encoder trunk {i + 1}"] = _stats(h)
        out["encoder speaker head"] = np.asarray(multitask_voiceprint(m, h), np.float32)
        out["encoder keyword head"] = _stats(multitask_keyword_frames(m, h))
        return out

    def _ge2e_one(self, y: np.ndarray) -> dict[str, np.ndarray]:
        if self._ge2e is None:
            self._ge2e = load_ge2e()
        return {"GE2E": embed_speakers([y], self._ge2e)[0]}

    def embed(self, wavs: list[np.ndarray], groups: tuple[str, ...] = tuple(GROUPS),
              each: Callable[[], None] = lambda: None) -> dict[str, np.ndarray]:
        """Every view of these groups: {view: (N, D)}; `each` runs after every clip (a deadline check)."""
        out: dict[str, list[np.ndarray]] = {v: [] for g in groups for v in GROUPS[g]}
        for g in groups:
            for y in wavs:
                for v, x in self.group(g, y).items():
                    out[v].append(x)
                each()
        return {v: np.stack(x) if x else np.zeros((0, 0), np.float32) for v, x in out.items()}
