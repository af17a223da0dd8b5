"""The seed's networks: one Generator (three passes give R, G, B) and two discriminators.

Generator (DCGAN-style, no BatchNorm, the topology the FPGA implements)::

    z (N, nz) as a 1×1 map
    → ConvTranspose2d(nz, c1, 4, 1, 0) → ReLU      4×4
    → ConvTranspose2d(c1, c2, 4, 2, 1) → ReLU      8×8
    → ConvTranspose2d(c2, c3, 4, 2, 1) → ReLU     16×16
    → ConvTranspose2d(c3, 1, 4, 2, 1)  → Tanh     32×32

Colour: the R plane is G(z), the G plane G(z + v1), the B plane G(z + v2), with ``v`` (2, nz)
drawn once from the seeded RNG when the model is created and saved with it.

Discriminators (``D_grey`` on 1-channel planes, ``D_color`` on RGB)::

    Conv2d(in, d1, 4, 2, 1) → LeakyReLU(0.2)                    16×16
    Conv2d(d1, d2, 4, 2, 1, no bias) → BatchNorm2d → LeakyReLU    8×8
    Conv2d(d2, d3, 4, 2, 1, no bias) → BatchNorm2d → LeakyReLU    4×4
    [MinibatchStd]      → the batch's spread as one more channel (``mbstd=True``; off by default)
    Linear(d3·4·4, 1)   → one logit (the sigmoid is inside the BCE-with-logits loss)
"""

from __future__ import annotations

import numpy as np

from base.contract import DEFAULT_CHANNELS  # the default Generator widths (a contract fact)
from golden import nn

#: Default discriminator widths (small, for training speed).
DEFAULT_D_CHANNELS = [32, 64, 128]
IMAGE_SIZE = 32


class Generator:
    """The seed's Generator with its fixed colour vectors.

    Parameters
    ----------
    channels : list of int
        ``[nz, c1, c2, c3, 1]``.
    rng : numpy.random.Generator, optional
        Draws the DCGAN initial weights and then ``v``; without it all weights are zero and
        ``v`` is zero (to be filled from a checkpoint).
    """

    def __init__(self, channels=None, rng: np.random.Generator | None = None):
        channels = list(DEFAULT_CHANNELS if channels is None else channels)
        if len(channels) != 5 or channels[-1] != 1 or min(channels) < 1:
            raise ValueError(f"Generator channels must be [nz, c1, c2, c3, 1], got {channels}")
        self.channels = channels
        c = channels
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c[0], c[1], 4, 1, 0, need_dx=False), nn.ReLU(),
            nn.ConvTranspose2d(c[1], c[2], 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(c[2], c[3], 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(c[3], c[4], 4, 2, 1), nn.Tanh(),
        )
        self.v = np.zeros((2, c[0]), nn.DTYPE)
        if rng is not None:
            nn.dcgan_init(self.net, rng)
            self.v[...] = rng.standard_normal((2, c[0]))

    @property
    def nz(self) -> int:
        return self.channels[0]

    def _deconvs(self):
        return [layer for layer in self.net.layers if isinstance(layer, nn.ConvTranspose2d)]

    @property
    def params(self) -> dict[str, np.ndarray]:
        """``{"w1": (IC, OC, 4, 4), "b1": (OC,), ..., "w4", "b4"}`` (the live arrays)."""
        out = {}
        for i, layer in enumerate(self._deconvs(), 1):
            out[f"w{i}"] = layer.params["w"]
            out[f"b{i}"] = layer.params["b"]
        return out

    def _check_u(self, u) -> np.ndarray:
        u = np.asarray(u, dtype=nn.DTYPE)
        if u.ndim != 2 or u.shape[1] != self.nz:
            raise ValueError(f"expected inputs of shape (N, {self.nz}), got {u.shape}")
        return u

    # ---- training interface (caches for backward)
    def forward(self, u: np.ndarray) -> np.ndarray:
        """``u`` (N, nz) → planes (N, 1, 32, 32) in [−1, 1]; caches for :meth:`backward`."""
        u = self._check_u(u)
        return self.net.forward(u.reshape(u.shape[0], self.nz, 1, 1))

    def backward(self, dout: np.ndarray) -> None:
        """Back-propagate ``dL/dplanes`` (N, 1, 32, 32); gradients land in the layers' ``grads``."""
        self.net.backward(dout)

    def stacked_inputs(self, z: np.ndarray) -> np.ndarray:
        """``[z; z + v1; z + v2]`` (3N, nz): the three passes as one batch."""
        z = self._check_u(z)
        return np.concatenate([z, z + self.v[0], z + self.v[1]], axis=0)

    def forward_rgb(self, z: np.ndarray) -> np.ndarray:
        """``z`` (N, nz) → RGB (N, 3, 32, 32), one batched pass of 3N inputs; caches for backward."""
        n = np.asarray(z).shape[0]
        planes = self.forward(self.stacked_inputs(z))        # (3N, 1, H, W)
        return planes.reshape(3, n, IMAGE_SIZE, IMAGE_SIZE).transpose(1, 0, 2, 3)

    def backward_rgb(self, drgb: np.ndarray) -> None:
        """Back-propagate ``dL/dRGB`` (N, 3, 32, 32) through the three passes."""
        n = drgb.shape[0]
        self.backward(np.ascontiguousarray(drgb.transpose(1, 0, 2, 3)).reshape(3 * n, 1, IMAGE_SIZE, IMAGE_SIZE))

    # ---- inference interface (docs/ARCHITECTURE.md)
    def layers(self, u) -> list[np.ndarray]:
        """The 4 pre-activation outputs (N, C, H, W) float32 for inputs ``u`` (N, nz)."""
        u = self._check_u(u)
        x = u.reshape(u.shape[0], self.nz, 1, 1)
        out = []
        for layer in self.net.layers:
            x = layer.forward(x)
            if isinstance(layer, nn.ConvTranspose2d):
                out.append(x)
        return out

    def plane(self, u) -> np.ndarray:
        """``u`` (N, nz) → (N, 32, 32) float32 in [−1, 1] (the Tanh output)."""
        u = self._check_u(u)
        return self.forward(u)[:, 0]

    def rgb(self, z) -> np.ndarray:
        """``z`` (N, nz) → (N, 3, 32, 32) float32: the planes of z, z + v1, z + v2."""
        return np.ascontiguousarray(self.forward_rgb(z))


class Discriminator:
    """Strided-convolution discriminator giving one logit per image.

    Parameters
    ----------
    in_ch : int
        1 for ``D_grey``, 3 for ``D_color``.
    channels : list of int
        Widths of the convolutions (each halves the resolution); BatchNorm after all but the first.
    rng : numpy.random.Generator, optional
        DCGAN initialisation.
    mbstd : bool
        Append the minibatch standard deviation (:class:`golden.nn.MinibatchStd`) as one more
        channel before the Linear layer.
    """

    def __init__(self, in_ch: int, channels=None, rng: np.random.Generator | None = None,
                 size: int = IMAGE_SIZE, mbstd: bool = False):
        channels = list(DEFAULT_D_CHANNELS if channels is None else channels)
        if not channels or min(channels) < 1 or size % (2 ** len(channels)):
            raise ValueError(f"bad discriminator channels {channels}")
        self.in_ch, self.channels = in_ch, channels
        layers = []
        prev = in_ch
        for i, c in enumerate(channels):
            if i == 0:
                layers += [nn.Conv2d(prev, c, 4, 2, 1, bias=True), nn.LeakyReLU(0.2)]
            else:
                layers += [nn.Conv2d(prev, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            prev = c
        side = size // 2 ** len(channels)
        if mbstd:
            layers.append(nn.MinibatchStd())
            prev += 1
        layers.append(nn.Linear(prev * side * side, 1))
        self.net = nn.Sequential(*layers)
        if rng is not None:
            nn.dcgan_init(self.net, rng)

    def forward(self, x: np.ndarray, need_dx: bool = False) -> np.ndarray:
        """Images (N, in_ch, 32, 32) → logits (N, 1). ``need_dx``: keep what the input gradient needs."""
        self.net.layers[0].need_dx = need_dx
        return self.net.forward(x)

    def backward(self, dlogits: np.ndarray) -> np.ndarray | None:
        """Gradients into the layers' ``grads``; returns ``dL/dx`` if the forward had ``need_dx``."""
        return self.net.backward(dlogits)

    def set_train(self, flag: bool) -> None:
        self.net.set_train(flag)
