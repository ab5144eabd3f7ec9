"""Multinomial logistic regression on standardised inputs (L2, L-BFGS): the linear probe of TRILL's protocol,
in numpy and scipy so that the runtime needs no scikit-learn."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import minimize


@dataclass(frozen=True)
class Logistic:
    classes: np.ndarray    # (K,) labels, in the order of the probability columns
    mu: np.ndarray         # (D,) input mean and std of the training rows
    sd: np.ndarray
    w: np.ndarray          # (D + 1, K) weights, the bias last

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, classes: np.ndarray | None = None, l2: float = 1e-2,
            max_iter: int = 300, each: Callable[[], None] = lambda: None) -> "Logistic":
        """Fit on (x, y). `classes` fixes the columns (a fold may lack some class: it gets a low score);
        `each` runs at every evaluation of the loss (a deadline check may raise from it)."""
        classes = np.unique(y) if classes is None else np.asarray(classes)
        mu, sd = x.mean(0), x.std(0) + 1e-6
        xb = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
        onehot = (np.asarray(y)[:, None] == classes[None, :]).astype(np.float64)
        n, k = len(x), len(classes)

        def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
            each()
            w = flat.reshape(-1, k)
            p = _softmax(xb @ w)
            g = xb.T @ (p - onehot) / n
            g[:-1] += l2 * w[:-1]
            return float(-(onehot * np.log(p + 1e-12)).sum() / n + 0.5 * l2 * (w[:-1] ** 2).sum()), g.ravel()

        w = minimize(loss, np.zeros(xb.shape[1] * k), jac=True, method="L-BFGS-B", options={"maxiter": max_iter}).x
        return cls(classes, mu.astype(np.float32), sd.astype(np.float32), w.reshape(-1, k).astype(np.float32))

    def proba(self, x: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities."""
        return _softmax(np.hstack([(x - self.mu) / self.sd, np.ones((len(x), 1), np.float32)]) @ self.w)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes[np.argmax(self.proba(x), axis=1)]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)
