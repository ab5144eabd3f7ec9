"""The numpy runtime of the multi-task encoder must compute what the torch module computes."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("speechbrain")

from kws.nn import encoder  # noqa: E402
from kws.training.model import EncoderShape, MultiTaskEncoder, export_arrays  # noqa: E402


def test_numpy_runtime_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = MultiTaskEncoder(EncoderShape())
    with torch.no_grad():   # non-trivial batch-norm statistics, so folding them is tested
        for block in [*model.trunk, model.spk]:
            block.norm.norm.running_mean.uniform_(-0.5, 0.5)
            block.norm.norm.running_var.uniform_(0.5, 2.0)
    model.eval()
    arrays = export_arrays(model)
    arrays["dilations"] = np.array(EncoderShape().dilations)
    path = tmp_path / "encoder.npz"
    np.savez(path, **arrays)
    m = encoder.load_multitask(str(path))
    x = np.random.default_rng(1).standard_normal((87, 40)).astype(np.float32)
    with torch.no_grad():
        kw, spk = model(torch.from_numpy(x)[None], torch.tensor([87]))
    trunk = encoder.multitask_trunk(m, x)
    assert np.abs(encoder.multitask_keyword_frames(m, trunk) - kw[0].numpy()).max() < 1e-4
    ref = spk[0].numpy() / np.linalg.norm(spk[0].numpy())
    assert np.abs(encoder.multitask_voiceprint(m, trunk) - ref).max() < 1e-4
    assert path.stat().st_size < 10e6


def test_matcher_numpy_matches_torch():
    from kws.scoring.matcher import Matcher, matcher_logits
    from kws.training.model import MatcherCNN
    torch.manual_seed(0)
    cnn = MatcherCNN().eval()
    mats = np.random.default_rng(2).random((5, 24, 40)).astype(np.float32)
    with torch.no_grad():
        ref = cnn(torch.from_numpy(mats)).numpy()
    assert np.abs(matcher_logits(Matcher(cnn.export_arrays()), mats) - ref).max() < 1e-4


def test_match_matrix_shape_and_diagonal():
    from kws.scoring import dtw
    from kws.scoring.matcher import GRID, match_matrix
    t = np.random.default_rng(3).standard_normal((30, 19)).astype(np.float32)
    frames = np.concatenate([np.random.default_rng(4).standard_normal((20, 19)), t, np.random.default_rng(5)
                             .standard_normal((20, 19))]).astype(np.float32)
    m = dtw.best_matches(t, [frames])[0]
    mat = match_matrix(t, frames, m)
    assert mat.shape == GRID and 18 <= m.start <= 22
    best = mat.argmin(axis=1)                       # the match: a low-cost diagonal, left to right
    assert np.mean(np.diff(best) >= 0) > 0.85 and best[-1] - best[0] > GRID[1] // 2
    assert mat.min(axis=1).mean() < 0.5 * mat.mean()


def test_ge2e_net_carries_the_runtime_weights_both_ways():
    from kws.training.model import GE2ENet
    wheel = encoder.load_ge2e_wheel()
    net = GE2ENet()
    net.load_runtime(wheel)
    with torch.no_grad():
        net.lstm.weight_hh_l2.add_(0.01)              # a tuned top layer
        net.linear.bias.add_(0.05)
    arrays = net.export_layers(2)
    assert set(arrays) == {"w_ih_2", "w_hh_2", "bias_2", "proj_w", "proj_b"}
    np.testing.assert_allclose(arrays["w_ih_2"], wheel.w_ih[2], atol=1e-6)   # untouched: exported as read
    tuned = encoder.GE2E(w_ih=wheel.w_ih, w_hh=(*wheel.w_hh[:2], arrays["w_hh_2"]),
                         bias=(*wheel.bias[:2], arrays["bias_2"]), proj_w=arrays["proj_w"], proj_b=arrays["proj_b"])
    x = np.abs(np.random.default_rng(2).standard_normal((120, 40))).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)[None], torch.tensor([120]))[0].numpy()
    assert np.abs(encoder.embed_partials(tuned, [x])[0] - ref).max() < 1e-4


def test_ge2e_loss_is_the_papers_softmax_loss_and_rewards_separated_speakers():
    from kws.training.model import ge2e_loss
    g = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(4, 16, generator=g), dim=1)
    tight = torch.nn.functional.normalize(centres[:, None] + 0.1 * torch.randn(4, 3, 16, generator=g), dim=2)
    mixed = tight.reshape(12, 16)[torch.randperm(12, generator=g)].reshape(4, 3, 16)
    w, b = torch.tensor(10.0), torch.tensor(-5.0)
    assert ge2e_loss(tight, w, b) < 0.1 < 1.0 < ge2e_loss(mixed, w, b)
    # against a loop over utterances: own centroid without the utterance itself, cross-entropy over speakers
    ref = 0.0
    for j in range(4):
        for i in range(3):
            sims = []
            for k in range(4):
                members = [tight[k, x] for x in range(3) if not (k == j and x == i)]
                c = torch.nn.functional.normalize(torch.stack(members).mean(0), dim=0)
                sims.append(w * (tight[j, i] @ c) + b)
            ref = ref - torch.log_softmax(torch.stack(sims), 0)[j]
    assert abs(float(ge2e_loss(tight, w, b)) - float(ref) / 12) < 1e-5
    x = tight.clone().requires_grad_(True)
    ge2e_loss(x, w, b).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
