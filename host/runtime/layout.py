"""DRAM layout of a layer: input, weights, per-kernel parameters and output regions."""

import numpy as np

from hw.contract import PARAM_BYTES, conv_weights, pack_params, pointwise_weights

from host.golden import tiling

__all__ = ["param_block", "weight_bytes", "DramImage", "layer_descriptor"]

ALIGN = 4096


def param_block(conv):
    """The layer's :class:`hw.contract.KernelParams` per kernel (``PARAM_BYTES`` each)."""
    return pack_params(conv.bias_q, conv.multiplier, conv.output_zero_point, conv.lo, conv.hi)


def weight_bytes(conv):
    """Weights as stored in DRAM: a 3x3 kernel's channel-major (C, K, 9) of
    :func:`hw.contract.conv_weights`, a 1x1 kernel's channel-blocked (ceil(C / 9), K, 9) of
    :func:`hw.contract.pointwise_weights`, a depthwise kernel's (K, 9)."""
    if conv.kernel_size == 1:
        return pointwise_weights(conv.weight)
    if conv.depthwise:
        return conv.weight.astype(np.int8).view(np.uint8).reshape(-1)
    return conv_weights(conv.weight)


class DramImage:
    """A byte-addressed memory image with regions placed at 4 KiB-aligned addresses."""

    def __init__(self, base=0x1000):
        self.base = base
        self.regions = {}
        self.top = base

    def place(self, name, size, data=None):
        addr = self.top
        self.regions[name] = (addr, size)
        self.top = -(-(addr + size + 64) // ALIGN) * ALIGN       # guard gap between regions
        if data is not None:
            self.write(name, data)
        return addr

    def write(self, name, data):
        addr, size = self.regions[name]
        data = np.asarray(data, dtype=np.uint8).reshape(-1)
        assert data.size == size
        self._bytes(addr + size)[addr:addr + size] = data

    def read(self, addr, length):
        return self._bytes(addr + length)[addr:addr + length]

    def _bytes(self, size):
        if not hasattr(self, "_mem") or self._mem.size < size:
            mem = np.zeros(max(size, self.top), dtype=np.uint8)
            if hasattr(self, "_mem"):
                mem[:self._mem.size] = self._mem
            self._mem = mem
        return self._mem

    @property
    def memory(self):
        return self._bytes(self.top)


def layer_descriptor(conv, x_shape, dram, tiles=None, residual=None):
    """Place a layer's tensors in ``dram`` and return its descriptor dict (``residual``:
    a fused addition's tensor and parameters, see ``host.runtime.driver.prepare_layer``)."""
    _, c, h, w = x_shape
    xo, yo = conv.output_shape(h, w)
    k = conv.out_channels
    tiles = tiles or {}
    weights = weight_bytes(conv)
    fused = None
    if residual is not None:
        tensor = np.asarray(residual["tensor"], dtype=np.uint8)
        if tensor.shape != (k, xo, yo):
            raise ValueError(f"the residual must be u8 {(k, xo, yo)}, got {tensor.shape}")
        fused = {**{n: int(residual[n]) for n in ("ma", "mb", "shift", "za", "zb", "zo", "lo")},
                 "addr": dram.place("residual", tensor.size, tensor)}
    d = tiling.descriptor(
        input_addr=dram.place("input", c * h * w), weight_addr=dram.place("weights", weights.size),
        params_addr=dram.place("params", k * PARAM_BYTES), output_addr=dram.place("output", k * xo * yo),
        channels=c, height=h, width=w, kernels=k, kernel_size=conv.kernel_size, stride=conv.stride,
        padding=conv.padding, depthwise=int(conv.depthwise), residual=fused,
        **{f"tile_{n}": v for n, v in tiles.items()})
    dram.write("weights", weights)
    dram.write("params", param_block(conv))
    return d
