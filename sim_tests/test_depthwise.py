"""Depthwise and grouped convolutions end to end in Verilator, bit-exact with PyTorch.

Depthwise 3x3 layers (groups = C = K) run whole on the array, min(KP, 9) channels at once
(configurations with KP above nine included): channel
counts that are and are not multiples of KP, every padding, stride 1 and 2, per-tensor and
per-channel weights, ReLU and ReLU6 (the activation table), tiles split in every
dimension. Other grouped layers (3x3 and 1x1 groups) run one group at a time.
"""

import numpy as np
import pytest
import torch.ao.nn.quantized as nnq

from hw.config import AccelConfig
from host.compiler.torch_frontend import conv_from_torch
from host.runtime.sim import run_conv
from host.runtime.sim.torch_layers import output_qparams, quantized_input, random_conv

from host.compiler.planner import layer_tiles
from host.runtime.sim.checks import run_checked_batch

CFG = AccelConfig()


def grouped_layer(rng, *, c, k, groups, kernel, stride, padding, h, w, per_channel, activation):
    """A quantized grouped conv (``activation``: None, "relu" or "relu6"), its input and
    PyTorch's output."""
    module = random_conv(rng, c=c, k=k, kernel=kernel, stride=stride, padding=padding,
                         per_channel=per_channel, relu=activation == "relu", groups=groups)
    s_x, z_x = float(rng.uniform(0.01, 0.1)), int(rng.integers(0, 256))
    x = rng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
    module.scale, module.zero_point = output_qparams(rng, module, x, s_x, z_x)
    act = nnq.ReLU6() if activation == "relu6" else None
    y = module(quantized_input(x, s_x, z_x))
    expected = (act(y.contiguous()) if act else y).int_repr().numpy()
    return conv_from_torch(module, s_x, z_x, activation=act), x, expected


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_layers(stride):
    """Channels 1, 2, 3, 5, 6, 16, 24, paddings 0 to 2, split and whole tiles, in one run."""
    rng = np.random.default_rng(40 + stride)
    layers = []
    for index, c in enumerate((1, 2, 3, 5, 6, 16, 24)):
        padding = index % 3
        h, w = int(rng.integers(5, 14)), int(rng.integers(5, 16))
        conv, x, expected = grouped_layer(rng, c=c, k=c, groups=c, kernel=3, stride=stride,
                                          padding=padding, h=h, w=w, per_channel=bool(index % 2),
                                          activation=(None, "relu", "relu6")[index % 3])
        assert conv.depthwise or c == 1          # one channel: an ordinary conv
        xo, yo = conv.output_shape(h, w)
        tk = max(1, c // 2)
        split = {"k": tk, "c": tk, "xo": max(1, xo // 2), "yo": max(1, yo // 2)}
        whole = {"k": c, "c": c, "xo": xo, "yo": yo}
        layers.append((conv, x, expected, split if index % 2 else whole))
    run_checked_batch(CFG, layers, latency=40)


@pytest.mark.parametrize("cfg", [AccelConfig(kp=12, yp=4),
                                 AccelConfig(kp=10, yp=2, dsp_packing=True, max_depthwise_lanes=3)],
                         ids=["kp12", "kp10_packed_3_lanes"])
def test_depthwise_on_a_wide_array(cfg):
    """Fewer depthwise lanes than KP (9 lanes for KP 12; 3 for KP 10): a depthwise tile is
    one group of at most that many channels on the first array rows (the rows past them
    idle); channel counts below, at and above it, both strides, split and whole tiles,
    the planner's tiles."""
    from host.compiler.planner import layer_tiles
    lanes = cfg.depthwise_lanes
    assert lanes < cfg.kp and cfg.max_depthwise_tile_k == lanes
    rng = np.random.default_rng(cfg.kp)
    layers = []
    for index, (c, stride) in enumerate(((4, 1), (9, 2), (20, 1), (32, 2), (13, 1))):
        padding = (1, 0, 2, 1, 1)[index]
        h, w = int(rng.integers(6, 13)), int(rng.integers(6, 15))
        conv, x, expected = grouped_layer(rng, c=c, k=c, groups=c, kernel=3, stride=stride,
                                          padding=padding, h=h, w=w, per_channel=bool(index % 2),
                                          activation=(None, "relu", "relu6")[index % 3])
        xo, yo = conv.output_shape(h, w)
        tk = min(c, lanes) if index % 2 else max(1, min(c, lanes) // 2 + 1)
        tiles = ({"k": tk, "c": tk, "xo": max(1, xo // 2), "yo": max(1, yo // 2)} if index < 4
                 else layer_tiles(cfg, conv, h, w))
        assert tiles["k"] <= lanes
        layers.append((conv, x, expected, tiles))
    run_checked_batch(cfg, layers, latency=30)


def test_depthwise_axi_pauses():
    rng = np.random.default_rng(9)
    layers = []
    for c, stride, padding in ((7, 1, 1), (9, 2, 1), (4, 1, 2)):
        conv, x, expected = grouped_layer(rng, c=c, k=c, groups=c, kernel=3, stride=stride,
                                          padding=padding, h=11, w=13, per_channel=True,
                                          activation="relu6")
        layers.append((conv, x, expected, {"k": 3, "c": 3, "xo": 4, "yo": 5}))
    run_checked_batch(CFG, layers, latency=60, pause=0.3, seed=2)


@pytest.mark.parametrize("groups,kernel,c,k", [(4, 3, 8, 12), (2, 1, 18, 10), (8, 3, 8, 16)])
def test_grouped_layers_run_one_group_at_a_time(groups, kernel, c, k):
    """Grouped 3x3, grouped 1x1 and depthwise with a channel multiplier (K = 2C)."""
    rng = np.random.default_rng(groups * 10 + kernel)
    conv, x, expected = grouped_layer(rng, c=c, k=k, groups=groups, kernel=kernel, stride=1,
                                      padding=kernel // 2, h=9, w=10, per_channel=True,
                                      activation="relu")
    assert not conv.depthwise
    y, counters = run_conv(CFG, conv, x, layer_tiles(CFG, conv.group(0), 9, 10), latency=30)
    assert np.array_equal(conv(x), expected), "golden model differs from PyTorch"
    assert np.array_equal(y, expected)
    assert counters["dram_write_bytes"] == expected.size
