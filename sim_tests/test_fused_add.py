"""Residual additions fused into a conv's output stage, through the RTL against PyTorch:
a quantized conv (3x3 and 1x1, strides 1 and 2, ReLU or not) followed by
``torch.ops.quantized.add`` / ``add_relu`` of a residual with its own quantization; the
accelerator writes the sum and never the conv's own output. Tiles split in every
dimension, the planner's tiles, and random AXI pauses (cocotb)."""

import numpy as np
import pytest
import torch

from hw.config import AccelConfig
from host.compiler.planner import layer_tiles
from host.compiler.torch_frontend import conv_from_torch
from host.golden.quant import add_parameters
from host.runtime.sim import prepare_batch, run_layers
from host.runtime.sim.checks import check_outputs_only
from host.runtime.sim.torch_layers import output_qparams, quantized_input, random_conv

CFG = AccelConfig()


def fused_layer(rng, c, k, h, w, kernel, stride, relu, add_relu):
    """(conv, x, residual fields, PyTorch's sum) of a conv followed by a quantized add."""
    module = random_conv(rng, c=c, k=k, kernel=kernel, stride=stride, padding=kernel // 2,
                         per_channel=bool(rng.integers(0, 2)), relu=relu)
    s_x, z_x = float(rng.uniform(0.01, 0.1)), int(rng.integers(0, 256))
    x = rng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
    module.scale, module.zero_point = output_qparams(rng, module, x, s_x, z_x)
    y = module(quantized_input(x, s_x, z_x))
    s_r, z_r = float(y.q_scale()) * rng.uniform(0.3, 3.0), int(rng.integers(0, 256))
    r = rng.integers(0, 256, size=tuple(y.shape), dtype=np.uint8)
    s_o, z_o = float(y.q_scale()) * rng.uniform(0.8, 2.5), int(rng.integers(0, 200))
    op = torch.ops.quantized.add_relu if add_relu else torch.ops.quantized.add
    expected = op(y, quantized_input(r, s_r, z_r), s_o, z_o).int_repr().numpy()[0]
    ma, mb, shift = add_parameters(y.q_scale(), s_r, s_o)
    assert shift <= 31
    residual = {"tensor": r[0], "ma": ma, "mb": mb, "shift": shift, "za": int(y.q_zero_point()),
                "zb": z_r, "zo": z_o, "lo": z_o if add_relu else 0}
    return conv_from_torch(module, s_x, z_x), x, residual, expected


def split(conv, h, w):
    xo, yo = conv.output_shape(h, w)
    c, k = conv.in_channels, conv.out_channels
    return {"k": max(1, k // 2 + 1), "c": (9 if c > 9 else c) if conv.kernel_size == 1 else max(1, c // 2),
            "xo": max(1, xo // 2), "yo": max(1, yo // 3)}


CASES = [  # (C, K, H, W, kernel, stride, conv ReLU, add+ReLU)
    (8, 12, 10, 11, 3, 1, True, True), (10, 7, 13, 9, 3, 2, False, True), (16, 20, 8, 8, 1, 1, False, False),
    (12, 9, 9, 12, 1, 2, True, False), (20, 6, 7, 7, 3, 1, False, False),
]


def run_cases(tiles_of, **options):
    rng = np.random.default_rng(11)
    layers = [fused_layer(rng, *case) for case in CASES]
    specs = [(conv, x, tiles_of(conv, *x.shape[2:])) for conv, x, _, _ in layers]
    runs, memory = prepare_batch(CFG, specs, residuals=[res for _, _, res, _ in layers])
    result = run_layers(CFG, [{"run": run} for run in runs], memory=memory, **options)
    for case, run, layer, (_, _, _, expected) in zip(CASES, runs, result["layers"], layers):
        assert layer["error_code"] == 0 and layer["irq"], case
        got = np.asarray(layer["output"], dtype=np.uint8).reshape(run.output_shape)
        assert np.array_equal(got, expected), f"{case}: {int((got != expected).sum())} of {got.size} differ"
        assert layer["counters"]["dram_read_bytes"] == run.read_bytes()     # the residual included
        assert layer["counters"]["dram_write_bytes"] == expected.size      # the sum, written once
    check_outputs_only(result, runs)


@pytest.mark.parametrize("tiles", ["split", "planner"])
def test_fused_additions_equal_pytorch(tiles):
    run_cases(split if tiles == "split" else (lambda conv, h, w: layer_tiles(CFG, conv, h, w)), latency=40)


def test_fused_additions_with_axi_pauses():
    run_cases(split, latency=30, pause=0.3, seed=6)
