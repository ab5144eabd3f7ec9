"""The multi-task encoder as a torch module: model code only (training lives in scripts/train_encoder.py).

A TDNN trunk over normalised log-mel frames (speechbrain's TDNNBlock: conv, ReLU, batch norm)
feeds two heads:
- keyword head: a 1x1 convolution to unit-length frame embeddings, the frames DTW matches;
- speaker head: a TDNN block, mean+std statistics pooling and a linear layer, an utterance
  voiceprint (trained with additive angular margin softmax over the training speakers).
Every layer is one the numpy runtime in kws/encoder.py reproduces, so predict needs no torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from speechbrain.lobes.models.ECAPA_TDNN import TDNNBlock
from torch import nn


@dataclass(frozen=True)
class EncoderShape:
    n_mels: int = 40
    channels: int = 128
    kernels: tuple[int, ...] = (5, 3, 3, 1)
    dilations: tuple[int, ...] = (1, 2, 3, 1)
    kw_dim: int = 64
    spk_channels: int = 256
    spk_dim: int = 128

    def as_dict(self) -> dict:
        return asdict(self)


class MultiTaskEncoder(nn.Module):
    def __init__(self, shape: EncoderShape = EncoderShape()):
        super().__init__()
        self.shape = shape
        layers, c_in = [], shape.n_mels
        for k, d in zip(shape.kernels, shape.dilations):
            layers.append(TDNNBlock(c_in, shape.channels, k, d))
            c_in = shape.channels
        self.trunk = nn.Sequential(*layers)
        self.kw = nn.Conv1d(shape.channels, shape.kw_dim, 1)
        self.spk = TDNNBlock(shape.channels, shape.spk_channels, 1, 1)
        self.spk_out = nn.Linear(2 * shape.spk_channels, shape.spk_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, T, n_mels) padded frames; lengths: (B,) valid frames.
        Returns keyword frames (B, T, kw_dim), unit length, and speaker embeddings (B, spk_dim)."""
        h = self.trunk(x.transpose(1, 2))                       # (B, C, T)
        kw = nn.functional.normalize(self.kw(h), dim=1).transpose(1, 2)
        s = self.spk(h)                                          # (B, S, T)
        mask = (torch.arange(x.shape[1])[None, :] < lengths[:, None]).to(s.dtype)[:, None, :]
        n = mask.sum(dim=2).clamp(min=1.0)
        mean = (s * mask).sum(dim=2) / n
        std = (((s - mean[:, :, None]) ** 2 * mask).sum(dim=2) / n).clamp(min=1e-5).sqrt()
        return kw, self.spk_out(torch.cat([mean, std], dim=1))


def export_arrays(model: MultiTaskEncoder) -> dict:
    """Plain arrays for the numpy runtime (kws/encoder.py): batch norms folded into scale and shift."""
    def block(b: TDNNBlock, prefix: str) -> dict:
        bn = b.norm.norm
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return {f"{prefix}_w": b.conv.conv.weight, f"{prefix}_b": b.conv.conv.bias,
                f"{prefix}_scale": scale, f"{prefix}_shift": bn.bias - bn.running_mean * scale}
    out: dict = {}
    for i, b in enumerate(model.trunk):
        out.update(block(b, f"trunk{i}"))
    out.update(block(model.spk, "spk"))
    out.update(kw_w=model.kw.weight, kw_b=model.kw.bias, spk_out_w=model.spk_out.weight, spk_out_b=model.spk_out.bias)
    return {k: v.detach().cpu().numpy().astype("float32") for k, v in out.items()}


class MatcherCNN(nn.Module):
    """The learned matcher (kws/matcher.py holds its numpy runtime): 3 conv layers over the resampled
    template-by-test distance matrix, global average pooling, one logit."""

    def __init__(self, channels: tuple[int, ...] = (8, 16, 16)):
        super().__init__()
        convs, c_in = [], 1
        for c in channels:
            convs.append(nn.Conv2d(c_in, c, 3, padding=1))
            c_in = c
        self.convs = nn.ModuleList(convs)
        self.out = nn.Linear(c_in, 1)

    def forward(self, mats: torch.Tensor) -> torch.Tensor:
        x = mats[:, None]
        for i, conv in enumerate(self.convs):
            x = torch.relu(conv(x))
            if i < len(self.convs) - 1:
                x = nn.functional.max_pool2d(x, 2)
        return self.out(x.mean(dim=(2, 3)))[:, 0]

    def export_arrays(self) -> dict:
        out = {}
        for i, conv in enumerate(self.convs):
            out[f"conv{i}_w"], out[f"conv{i}_b"] = conv.weight, conv.bias
        out["out_w"], out["out_b"] = self.out.weight, self.out.bias
        return {k: v.detach().cpu().numpy().astype("float32") for k, v in out.items()}


class GE2ENet(nn.Module):
    """Resemblyzer's GE2E speaker encoder (3-layer LSTM over 40 mel power bands, ReLU projection, unit
    output) as a torch module, for fine-tuning (scripts/train_voiceprint.py). Weights in and out as the
    numpy runtime's kws.nn.encoder.GE2E, whose gates are ordered (i, f, o, g) with the two biases summed."""

    def __init__(self, hidden: int = 256, layers: int = 3, n_mels: int = 40):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, T, 40) padded partials; lengths: (B,). The top layer's state at each partial's last frame."""
        out, _ = self.lstm(x)
        last = out[torch.arange(len(x)), lengths - 1]
        return nn.functional.normalize(torch.relu(self.linear(last)), dim=1)

    @staticmethod
    def _torch_order(w):
        i, f, o, g = w.chunk(4, dim=0)      # numpy runtime order back to PyTorch's (i, f, g, o)
        return torch.cat([i, f, g, o], dim=0)

    @staticmethod
    def _numpy_order(w):
        i, f, g, o = w.chunk(4, dim=0)
        return torch.cat([i, f, o, g], dim=0)

    def load_runtime(self, m) -> None:
        """Copy a kws.nn.encoder.GE2E's weights in (the biases go to b_ih, b_hh is zeroed: same sums)."""
        with torch.no_grad():
            for k, (w_ih, w_hh, b) in enumerate(zip(m.w_ih, m.w_hh, m.bias)):
                getattr(self.lstm, f"weight_ih_l{k}").copy_(self._torch_order(torch.from_numpy(w_ih)))
                getattr(self.lstm, f"weight_hh_l{k}").copy_(self._torch_order(torch.from_numpy(w_hh)))
                getattr(self.lstm, f"bias_ih_l{k}").copy_(self._torch_order(torch.from_numpy(b)))
                getattr(self.lstm, f"bias_hh_l{k}").zero_()
            self.linear.weight.copy_(torch.from_numpy(m.proj_w))
            self.linear.bias.copy_(torch.from_numpy(m.proj_b))

    def export_layers(self, first: int) -> dict:
        """The runtime's arrays of LSTM layers first.. and the projection (what fine-tuning changed)."""
        out = {}
        for k in range(first, self.lstm.num_layers):
            out[f"w_ih_{k}"] = self._numpy_order(getattr(self.lstm, f"weight_ih_l{k}"))
            out[f"w_hh_{k}"] = self._numpy_order(getattr(self.lstm, f"weight_hh_l{k}"))
            out[f"bias_{k}"] = self._numpy_order(getattr(self.lstm, f"bias_ih_l{k}") + getattr(self.lstm, f"bias_hh_l{k}"))
        out.update(proj_w=self.linear.weight, proj_b=self.linear.bias)
        return {k: v.detach().cpu().numpy().astype("float32") for k, v in out.items()}


def ge2e_loss(emb: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GE2E's softmax loss (Wan et al., 2018) over (N speakers, M utterances, D) unit embeddings: each
    utterance's scaled cosine (w * cos + b) to every speaker's centroid, its own speaker's left out of it
    (else one utterance pulls its own centroid toward itself), as logits of which speaker it is."""
    n, m, _ = emb.shape
    centroids = nn.functional.normalize(emb.mean(dim=1), dim=1)                            # (N, D)
    own = nn.functional.normalize((emb.sum(dim=1, keepdim=True) - emb) / (m - 1), dim=2)   # (N, M, D)
    sim = torch.einsum("nmd,kd->nmk", emb, centroids)
    idx = torch.arange(n)
    sim[idx, :, idx] = (emb * own).sum(dim=2)
    logits = w.clamp(min=1e-6) * sim + b
    return nn.functional.cross_entropy(logits.reshape(n * m, n), idx.repeat_interleave(m))
