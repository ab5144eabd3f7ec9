"""One audio stream of one Wyoming connection, AudioStart to AudioStop: PCM of any rate, width and
channel count in, the listened-to people's detections out.

PCM is converted as kws detect reads a file of that format (soundfile's float scaling, the mean of the
channels, then audio.Resampler, which equals resampling the whole signal at once), so the server makes
the decisions kws detect makes on the same audio. wyoming's AudioChunkConverter would resample with
audioop.ratecv (linear interpolation, no anti-alias filter) and round to 16 bits, and so decide otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from kws.app.household import Person, model_name
from kws.app.stream import Detection, StreamDetector, new_utterance
from kws.signal.audio import Resampler
from kws.config import SAMPLE_RATE

WIDTHS = (1, 2, 3, 4)   # bytes per sample: unsigned 8-bit, signed 16, 24 and 32-bit little-endian PCM


def pcm_to_float(audio: bytes, width: int, channels: int) -> np.ndarray:
    """Mono float32 in [-1, 1), as soundfile reads PCM (x / 2^(8 width - 1)) and read_blocks mixes it."""
    if width == 1:
        x = (np.frombuffer(audio, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        b = np.frombuffer(audio, np.uint8).reshape(-1, 3).astype(np.int32)
        x = (((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8) >> 8).astype(np.float32) / float(1 << 23)
    else:
        x = np.frombuffer(audio, "<i2" if width == 2 else "<i4").astype(np.float32) / float(1 << (8 * width - 1))
    return x if channels == 1 else x.reshape(-1, channels).mean(axis=1)


@dataclass(frozen=True)
class Heard:
    """A detection as the client gets it."""
    model: str        # the model's name (person:phrase)
    speaker: str      # whose profile fired
    timestamp_ms: int  # the end of the phrase, in ms from AudioStart
    detection: Detection


class WakeStream:
    """Every listened-to person's StreamDetector, fed the same 16 kHz mono samples.

    A person's phrases share one detector, as in kws detect; detections of models the client did not ask
    for are dropped. Across people a detection overlapping the last one sent, or ending within
    StreamConfig.refractory_s of it, is the same utterance (stream.new_utterance: the rule each detector
    keeps for its own phrases), so one utterance wakes the client once even when two people's profiles
    both accept it."""

    def __init__(self, people: Iterable[Person], names: set[str] | None, refractory_s: float):
        self.listeners: list[tuple[Person, StreamDetector, set[str]]] = []
        for person in people:
            wanted = set(person.models()) if names is None else set(person.models()) & names
            if wanted:
                self.listeners.append((person, person.detector.stream(live=True), wanted))
        self.refractory_s = refractory_s
        self.resampler: Resampler | None = None
        self.rate = 0
        self.fed = 0                # 16 kHz samples fed
        self.last_end = -math.inf   # end of the last detection sent, seconds
        self.heard = 0

    @property
    def seconds(self) -> float:
        return self.fed / SAMPLE_RATE

    def feed(self, chunks: list[tuple[bytes, int, int, int]]) -> list[Heard]:
        """Chunks (PCM, rate, width, channels), all at once: decisions do not depend on how audio is cut."""
        parts = []
        for audio, rate, width, channels in chunks:
            if rate != self.rate:
                parts.append(self._rate_change(rate))
            parts.append(self.resampler(pcm_to_float(audio, width, channels)))
        return self._decide(np.concatenate(parts) if parts else np.zeros(0, np.float32), last=False)

    def stop(self) -> list[Heard]:
        """The end of the stream: what the resampler holds back, then every detector's flush."""
        y = self.resampler(np.zeros(0, np.float32), last=True) if self.resampler else np.zeros(0, np.float32)
        return self._decide(y, last=True)

    def _rate_change(self, rate: int) -> np.ndarray:
        tail = self.resampler(np.zeros(0, np.float32), last=True) if self.resampler else np.zeros(0, np.float32)
        self.resampler, self.rate = Resampler(rate), rate
        return tail

    def _decide(self, y: np.ndarray, last: bool) -> list[Heard]:
        self.fed += len(y)
        found: list[tuple[Person, Detection]] = []
        for person, stream, wanted in self.listeners:
            out = stream.feed(y) if len(y) else []
            out += stream.flush() if last else []
            found += [(person, d) for d in out if _model(person, d) in wanted]
        heard = []
        for person, d in sorted(found, key=lambda pd: (pd[1].end_s, -pd[1].fused)):   # in stream order
            if new_utterance(d.start_s, d.end_s, self.last_end, self.refractory_s):
                heard.append(Heard(_model(person, d), person.name, round(d.end_s * 1000), d))
                self.last_end = d.end_s
        self.heard += len(heard)
        return heard


def _model(person: Person, d: Detection) -> str:
    return model_name(person.name, d.phrase)
