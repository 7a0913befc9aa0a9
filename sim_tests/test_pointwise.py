"""Channel-packed 1x1 layers and Linear end to end in Verilator, bit-exact with PyTorch.

PyTorch-quantized 1x1 convs (per-tensor and per-channel, with and without ReLU) with
channel counts that are and are not multiples of the 9-channel block, stride 1 and 2,
tiles split in every dimension, flat (full-width) tiles, random AXI pauses; Linear layers
with up to 2048 input features through the compiled program on the simulator.
"""

import numpy as np
import pytest
import torch
import torch.ao.quantization as tq
from torch import nn

from hw.config import AccelConfig
from host.compiler.program import compile
from host.compiler.torch_frontend import conv_from_torch
from host.runtime.sim.torch_layers import output_qparams, quantized_input, random_conv

from host.compiler.planner import layer_tiles
from host.runtime.sim.checks import run_checked_batch

CFG = AccelConfig()
CHANNELS = (1, 8, 9, 10, 17, 64, 300)


def torch_layer(rng, c, k, h, w, stride, per_channel, relu):
    """A quantized 1x1 layer, its input and PyTorch's output."""
    module = random_conv(rng, c=c, k=k, kernel=1, stride=stride, padding=0,
                         per_channel=per_channel, relu=relu)
    s_x, z_x = float(rng.uniform(0.01, 0.1)), int(rng.integers(0, 256))
    x = rng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
    module.scale, module.zero_point = output_qparams(rng, module, x, s_x, z_x)
    expected = module(quantized_input(x, s_x, z_x)).int_repr().numpy()
    return conv_from_torch(module, s_x, z_x), x, expected


def split_tiles(c, k, h, w, stride):
    """Tiles that split every dimension the layer has more than one of (T_C a multiple
    of the 9-channel block)."""
    xo, yo = (h - 1) // stride + 1, (w - 1) // stride + 1
    return {"k": max(1, k // 2 + 1), "c": 9 if c > 9 else c, "xo": max(1, xo // 2), "yo": max(1, yo // 3)}


@pytest.mark.parametrize("stride", [1, 2])
def test_pointwise_layers(stride):
    """Every channel count, split tiles and planner tiles (flat where stride 1)."""
    rng = np.random.default_rng(100 + stride)
    layers = []
    for index, c in enumerate(CHANNELS):
        k, h, w = int(rng.integers(1, 24)), int(rng.integers(3, 12)), int(rng.integers(3, 14))
        per_channel, relu = bool(index % 2), bool(index % 3 == 0)
        conv, x, expected = torch_layer(rng, c, k, h, w, stride, per_channel, relu)
        layers.append((conv, x, expected, split_tiles(c, k, h, w, stride)))
        conv, x, expected = torch_layer(rng, c, k + 3, h, w, stride, not per_channel, not relu)
        layers.append((conv, x, expected, layer_tiles(CFG, conv, h, w)))
    run_checked_batch(CFG, layers, latency=40)


def test_pointwise_axi_pauses():
    """Random AXI pauses on every channel, split tiles and flat tiles, both strides."""
    rng = np.random.default_rng(7)
    layers = []
    for c, k, h, w, stride, tiles in [(17, 11, 7, 9, 1, "split"), (64, 20, 6, 6, 1, None),
                                      (10, 7, 9, 8, 2, "split"), (300, 5, 3, 4, 2, None)]:
        conv, x, expected = torch_layer(rng, c, k, h, w, stride, per_channel=c % 2 == 0, relu=c > 50)
        layers.append((conv, x, expected, split_tiles(c, k, h, w, stride) if tiles else layer_tiles(CFG, conv, h, w)))
    run_checked_batch(CFG, layers, latency=60, pause=0.3, seed=3)


@pytest.mark.parametrize("per_channel", [False, True])
def test_linear_through_the_rtl(per_channel):
    """Linear 2048 -> 96 with ReLU (fused to LinearReLU), then Linear 96 -> 10, FX-quantized
    and calibrated, batches of 1 and 3: the program on the simulator equals the quantized
    model."""
    from host.tools.models import quantize_fx, symmetric_qconfig
    torch.manual_seed(11 + per_channel)
    model = nn.Sequential(nn.Linear(2048, 96), nn.ReLU(), nn.Linear(96, 10)).eval()
    qconfig = symmetric_qconfig()
    if per_channel:
        qconfig = tq.QConfig(activation=qconfig.activation,
                             weight=tq.PerChannelMinMaxObserver.with_args(
                                 dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
    model_q = quantize_fx(model, [torch.randn(8, 2048) for _ in range(2)], qconfig=qconfig)
    program = compile(model_q, torch.randn(1, 2048), cfg=CFG)
    assert [p["placement"] for p in program.layers] == ["accelerator", "accelerator"]
    assert [p["type"] for p in program.layers] == ["LinearReLU", "Linear"]
    for batch in (1, 3):
        x = torch.randn(batch, 2048)
        assert torch.equal(program.run(x, backend="sim"), model_q(x))
