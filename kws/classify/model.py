"""A trained classifier: one or more (view, logistic regression) members whose probabilities are averaged.
Saved as one npz (no pickle), atomically, so a reader or a kill mid-save never meets half a model."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws.classify.logistic import Logistic
from kws.errors import UsageError
from kws.safefile import atomic_write

MODEL_FILE = "model.npz"
FORMAT = 1


@dataclass(frozen=True)
class Member:
    view: str
    l2: float
    fit: Logistic


@dataclass(frozen=True)
class ClassifierModel:
    classes: list[str]
    members: tuple[Member, ...]
    cv_nauc: float            # the cross-validated NAUC on the training labels that chose it

    @property
    def views(self) -> list[str]:
        return sorted({m.view for m in self.members})

    def describe(self) -> str:
        return " + ".join(f"{m.view} (l2 {m.l2:g})" for m in self.members)

    def proba(self, x: dict[str, np.ndarray]) -> np.ndarray:
        """(N, K) probabilities from each member's view of the clips."""
        return np.mean([m.fit.proba(x[m.view]) for m in self.members], axis=0)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "classes": self.classes, "cv_nauc": self.cv_nauc,
                "members": [{"view": m.view, "l2": m.l2} for m in self.members]}
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
        for i, m in enumerate(self.members):
            arrays.update({f"m{i}_mu": m.fit.mu, f"m{i}_sd": m.fit.sd, f"m{i}_w": m.fit.w})
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write(folder / MODEL_FILE, buf.getvalue())
        return folder / MODEL_FILE

    @classmethod
    def load(cls, folder: str | Path) -> "ClassifierModel":
        path = Path(folder) / MODEL_FILE
        if not path.is_file():
            raise UsageError(f"{path}: no model yet (kws classify train writes it once its first model is fitted)")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if meta.get("format") != FORMAT:
                    raise UsageError(f"{path}: model format {meta.get('format')}, this kws reads {FORMAT}")
                classes = np.array(meta["classes"])
                members = tuple(Member(m["view"], float(m["l2"]), Logistic(classes, z[f"m{i}_mu"], z[f"m{i}_sd"], z[f"m{i}_w"]))
                                for i, m in enumerate(meta["members"]))
        except (OSError, ValueError, KeyError) as e:
            raise UsageError(f"{path}: not a readable kws classify model ({e})") from e
        return cls(list(meta["classes"]), members, float(meta["cv_nauc"]))
