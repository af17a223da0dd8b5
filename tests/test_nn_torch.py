"""Cross-check of every NumPy layer, the models and Adam against PyTorch (float32).

torch is a test-only dependency (pyproject ``[test]`` extra, pinned) and is imported only here;
``make test`` installs it, so these checks never skip silently. Tolerance (float32 vs float32,
different summation orders): ``|ours − torch| ≤ ATOL + RTOL·|torch|`` with ATOL = 1e-5 ×
max|torch| and RTOL = 1e-4.
"""

import numpy as np
import pytest
import torch

from golden import nn
from golden.models import Discriminator, Generator

RTOL = 1e-4


def close(ours, ref):
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    atol = 1e-5 * max(float(np.abs(ref).max()), 1e-3)
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=atol)


def run_both(layer, tlayer, x, rng):
    """Forward and backward through both; compare output, input gradient and parameter gradients."""
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    ty = tlayer(tx)
    ty.backward(torch.tensor(dy))
    close(y, ty)
    close(dx, tx.grad)
    return tx


def copy_params(layer, tlayer, rng):
    for k, p in layer.params.items():
        p[...] = rng.standard_normal(p.shape).astype(np.float32) * 0.3 + (1 if k == "gamma" else 0)
    with torch.no_grad():
        names = {"w": "weight", "b": "bias", "gamma": "weight", "beta": "bias"}
        for k, p in layer.params.items():
            getattr(tlayer, names[k]).copy_(torch.tensor(p))


def param_grads_close(layer, tlayer):
    names = {"w": "weight", "b": "bias", "gamma": "weight", "beta": "bias"}
    for k in layer.params:
        close(layer.grads[k], getattr(tlayer, names[k]).grad)


CONV_CASES = [
    # (cls, torch cls, in, out, k, s, p, bias, input HxW)
    (nn.Conv2d, torch.nn.Conv2d, 3, 32, 4, 2, 1, True, (32, 32)),
    (nn.Conv2d, torch.nn.Conv2d, 32, 64, 4, 2, 1, False, (16, 16)),
    (nn.Conv2d, torch.nn.Conv2d, 4, 5, 3, 1, 1, True, (7, 9)),
    (nn.Conv2d, torch.nn.Conv2d, 4, 5, 4, 2, 0, True, (9, 8)),
    (nn.ConvTranspose2d, torch.nn.ConvTranspose2d, 100, 128, 4, 1, 0, True, (1, 1)),
    (nn.ConvTranspose2d, torch.nn.ConvTranspose2d, 128, 64, 4, 2, 1, True, (4, 4)),
    (nn.ConvTranspose2d, torch.nn.ConvTranspose2d, 32, 1, 4, 2, 1, True, (16, 16)),
    (nn.ConvTranspose2d, torch.nn.ConvTranspose2d, 3, 4, 3, 2, 1, False, (5, 6)),
    (nn.ConvTranspose2d, torch.nn.ConvTranspose2d, 3, 4, 5, 3, 2, True, (4, 4)),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0].__name__}-{c[2]}-{c[3]}-k{c[4]}s{c[5]}p{c[6]}")
def test_convolutions_match_torch(case):
    cls, tcls, ic, oc, k, s, p, bias, hw = case
    rng = np.random.default_rng(ic * 1000 + oc)
    layer, tlayer = cls(ic, oc, k, s, p, bias=bias), tcls(ic, oc, k, s, p, bias=bias)
    copy_params(layer, tlayer, rng)
    run_both(layer, tlayer, rng.standard_normal((5, ic) + hw).astype(np.float32), rng)
    param_grads_close(layer, tlayer)


def test_linear_matches_torch():
    rng = np.random.default_rng(0)
    layer, tlayer = nn.Linear(2048, 1), torch.nn.Linear(2048, 1)
    copy_params(layer, tlayer, rng)
    x = rng.standard_normal((8, 128, 4, 4)).astype(np.float32)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    ty = tlayer(tx.flatten(1))
    ty.backward(torch.tensor(dy))
    close(y, ty)
    close(dx, tx.grad)
    param_grads_close(layer, tlayer)


def test_batchnorm_matches_torch_train_and_eval():
    rng = np.random.default_rng(1)
    layer, tlayer = nn.BatchNorm2d(6), torch.nn.BatchNorm2d(6, momentum=0.1)
    copy_params(layer, tlayer, rng)
    for step in range(3):  # running statistics accumulate over several batches
        x = (rng.standard_normal((7, 6, 5, 5)) * 2 + 0.5).astype(np.float32)
        run_both(layer, tlayer, x, rng)
        param_grads_close(layer, tlayer)
        tlayer.weight.grad = None
        tlayer.bias.grad = None
    close(layer.running_mean, tlayer.running_mean)
    close(layer.running_var, tlayer.running_var)
    layer.train = False
    tlayer.eval()
    run_both(layer, tlayer, rng.standard_normal((3, 6, 4, 4)).astype(np.float32), rng)
    param_grads_close(layer, tlayer)


class TorchMinibatchStd(torch.nn.Module):
    """ProGAN's layer with the whole batch as one group, written from the paper in torch."""

    def forward(self, x):
        s = torch.sqrt(x.var(dim=0, unbiased=False) + 1e-8).mean()
        return torch.cat([x, s.expand(x.shape[0], 1, *x.shape[2:])], dim=1)


def test_minibatch_std_matches_torch():
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((16, 128, 4, 4)) * 1.5 + 0.3).astype(np.float32)
    run_both(nn.MinibatchStd(), TorchMinibatchStd(), x, rng)


@pytest.mark.parametrize("name", ["relu", "leaky", "tanh", "sigmoid"])
def test_activations_match_torch(name):
    rng = np.random.default_rng(2)
    layer, tlayer = {
        "relu": (nn.ReLU(), torch.nn.ReLU()),
        "leaky": (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        "tanh": (nn.Tanh(), torch.nn.Tanh()),
        "sigmoid": (nn.Sigmoid(), torch.nn.Sigmoid()),
    }[name]
    x = (rng.standard_normal((4, 3, 5, 5)) * 4).astype(np.float32)
    x[0, 0, 0, :3] = [0.0, 60.0, -60.0]  # the kink and saturated values
    run_both(layer, tlayer, x, rng)


@pytest.mark.parametrize("target", [0.0, 1.0])
def test_bce_with_logits_matches_torch(target):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((64, 1)) * 5).astype(np.float32)
    x[:2, 0] = [120.0, -120.0]
    loss, g = nn.bce_with_logits(x, target)
    tx = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.full_like(tx, target))
    tl.backward()
    assert loss == pytest.approx(float(tl.detach()), rel=1e-5)
    close(g, tx.grad)


def test_adam_matches_torch_over_several_steps():
    rng = np.random.default_rng(4)
    shapes = [(3, 4, 4, 4), (4,), (10,)]
    ours = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    theirs = [torch.tensor(p.copy(), requires_grad=True) for p in ours]
    opt = nn.Adam(ours, lr=2e-3, betas=(0.5, 0.999))
    topt = torch.optim.Adam(theirs, lr=2e-3, betas=(0.5, 0.999))
    for step in range(6):
        grads = [(rng.standard_normal(s) * 10 ** rng.uniform(-4, 1)).astype(np.float32) for s in shapes]
        opt.step(grads)
        for t, g in zip(theirs, grads):
            t.grad = torch.tensor(g)
        topt.step()
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-6, atol=1e-6)


def _torch_generator(g: Generator):
    c = g.channels
    net = torch.nn.Sequential(
        torch.nn.ConvTranspose2d(c[0], c[1], 4, 1, 0), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(c[1], c[2], 4, 2, 1), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(c[2], c[3], 4, 2, 1), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(c[3], c[4], 4, 2, 1), torch.nn.Tanh())
    with torch.no_grad():
        for i, m in enumerate([0, 2, 4, 6], 1):
            net[m].weight.copy_(torch.tensor(g.params[f"w{i}"]))
            net[m].bias.copy_(torch.tensor(g.params[f"b{i}"]))
    return net


def test_generator_rgb_matches_torch():
    rng = np.random.default_rng(5)
    g = Generator(rng=rng)
    for k, a in g.params.items():
        a[...] = rng.standard_normal(a.shape).astype(np.float32) * 0.05
    net = _torch_generator(g)
    z = rng.standard_normal((6, 100)).astype(np.float32)
    rgb = g.forward_rgb(z)
    drgb = rng.standard_normal(rgb.shape).astype(np.float32)
    g.backward_rgb(drgb)
    tz = torch.tensor(z)
    tv = torch.tensor(g.v)
    trgb = torch.cat([net((tz + s).reshape(6, 100, 1, 1)) for s in (0, tv[0], tv[1])], dim=1)
    trgb.backward(torch.tensor(drgb))
    close(rgb, trgb)
    close(g.rgb(z), trgb)
    for i, m in enumerate([0, 2, 4, 6]):
        close(g.net.layers[2 * i].grads["w"], net[m].weight.grad)
        close(g.net.layers[2 * i].grads["b"], net[m].bias.grad)


def test_discriminator_matches_torch():
    rng = np.random.default_rng(6)
    d = Discriminator(3, rng=rng)
    tl = []
    for layer in d.net.layers:
        if isinstance(layer, nn.Conv2d):
            t = torch.nn.Conv2d(*layer.params["w"].shape[1::-1], 4, 2, 1, bias="b" in layer.params)
        elif isinstance(layer, nn.BatchNorm2d):
            t = torch.nn.BatchNorm2d(layer.params["gamma"].size)
        elif isinstance(layer, nn.LeakyReLU):
            t = torch.nn.LeakyReLU(0.2)
        else:
            tl.append(torch.nn.Flatten())
            t = torch.nn.Linear(layer.params["w"].shape[1], 1)
        if layer.params:
            copy_params(layer, t, rng)
        tl.append(t)
    net = torch.nn.Sequential(*tl)
    x = rng.standard_normal((16, 3, 32, 32)).astype(np.float32)
    logits = d.forward(x, need_dx=True)
    dl = rng.standard_normal(logits.shape).astype(np.float32)
    dx = d.backward(dl)
    tx = torch.tensor(x, requires_grad=True)
    tlog = net(tx)
    tlog.backward(torch.tensor(dl))
    close(logits, tlog)
    close(dx, tx.grad)
    tmods = [m for m in net if not isinstance(m, (torch.nn.LeakyReLU, torch.nn.Flatten))]
    ours = [layer for layer in d.net.layers if layer.params]
    for layer, t in zip(ours, tmods):
        param_grads_close(layer, t)
