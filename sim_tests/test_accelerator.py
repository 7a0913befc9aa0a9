"""The generated accelerator end to end in Verilator: DRAM in, DRAM out, bit-exact.

Every run also checks that nothing outside the output tensor changed in DRAM and that
the performance counters are consistent with the layer.
"""

import numpy as np
import pytest
import torch.ao.nn.quantized as nnq

from host.compiler.planner import layer_tiles
from host.runtime.driver import DriverError, prepare_layer
from host.compiler.torch_frontend import conv_from_torch
from host.runtime.sim import run_layers
from hw.config import AccelConfig
from hw.contract import TABLE_BYTES, ErrorCode
from host.runtime.sim.checks import check_guard, check_run
from host.runtime.sim.layers import random_conv
from host.runtime.sim.torch_layers import output_qparams, quantized_input, random_conv as torch_conv

CFG = AccelConfig()          # one Verilator build serves every test here


def run_one(cfg, conv, x, tiles=None, **options):
    run = prepare_layer(cfg, conv, x, tiles)
    result = run_layers(cfg, [{"run": run}], **options)
    check_guard(result, [run])
    return check_run(cfg, run, result["layers"][0], conv(x)[0])


# (C, K, H, W, kernel, stride, padding, tiles or None)
LAYERS = {
    "k_c_not_multiple_of_kp": (5, 7, 9, 10, 3, 1, 1, None),
    "stride2_pad1": (8, 6, 15, 13, 3, 2, 1, None),
    "stride2_pad0": (6, 5, 14, 11, 3, 2, 0, None),
    "pad0": (4, 4, 10, 9, 3, 1, 0, None),
    "1x1": (16, 12, 8, 8, 1, 1, 0, None),
    "1x1_stride2": (9, 5, 11, 10, 1, 2, 0, None),
    "fc_as_1x1": (64, 10, 1, 1, 1, 1, 0, None),
    "minimal": (1, 1, 3, 3, 3, 1, 0, None),
    "first_layer": (3, 16, 24, 24, 3, 2, 1, None),
    "tiles_k": (6, 11, 8, 8, 3, 1, 1, {"k": 4, "c": 6, "xo": 8, "yo": 8}),
    "tiles_c": (13, 5, 8, 8, 3, 1, 1, {"k": 5, "c": 4, "xo": 8, "yo": 8}),
    "tiles_x": (4, 5, 17, 8, 3, 1, 1, {"k": 5, "c": 4, "xo": 5, "yo": 8}),
    "tiles_y": (4, 5, 8, 19, 3, 1, 1, {"k": 5, "c": 4, "xo": 8, "yo": 6}),
    "tiles_all": (10, 8, 13, 15, 3, 1, 1, {"k": 4, "c": 3, "xo": 4, "yo": 5}),
    "tiles_all_stride2": (7, 7, 17, 16, 3, 2, 1, {"k": 3, "c": 3, "xo": 3, "yo": 3}),
    "wide": (32, 32, 16, 16, 3, 1, 1, None),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer(name):
    c, k, h, w, kernel, stride, padding, tiles = LAYERS[name]
    nrng = np.random.default_rng(sum(map(ord, name)))
    conv = random_conv(nrng, c, k, kernel, stride, padding, activation_table=name.startswith("tiles"))
    x = nrng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
    run_one(CFG, conv, x, tiles, latency=20)


def test_random_axi_pauses_and_latency():
    nrng = np.random.default_rng(77)
    conv = random_conv(nrng, 6, 7, 3, 1, 1, True)
    x = nrng.integers(0, 256, size=(1, 6, 11, 9), dtype=np.uint8)
    run_one(CFG, conv, x, {"k": 4, "c": 4, "xo": 4, "yo": 5}, latency=60, pause=0.3, seed=5)


@pytest.mark.parametrize("activation", ["relu", "relu6", "leaky", "per_channel"])
def test_pytorch_layer(activation):
    """Layers quantized by PyTorch: the accelerator equals torch's own output."""
    rng = np.random.default_rng({"relu": 1, "relu6": 2, "leaky": 3, "per_channel": 4}[activation])
    module = torch_conv(rng, c=7, k=9, kernel=3, stride=1, padding=1,
                        per_channel=activation == "per_channel", relu=activation == "relu")
    s_x, z_x = 0.04, 17
    x = rng.integers(0, 256, size=(1, 7, 10, 11), dtype=np.uint8)
    module.scale, module.zero_point = output_qparams(rng, module, x, s_x, z_x)
    act = {"relu6": nnq.ReLU6(), "leaky": nnq.LeakyReLU(0.05, 40, 0.1)}.get(activation)
    y = module(quantized_input(x, s_x, z_x))
    expected = (act(y.contiguous()) if act else y).int_repr().numpy()[0]
    conv = conv_from_torch(module, s_x, z_x, activation=act)
    run = prepare_layer(CFG, conv, x, {"k": 6, "c": 4, "xo": 5, "yo": 11})
    result = run_layers(CFG, [{"run": run}], latency=30)
    check_guard(result, [run])
    check_run(CFG, run, result["layers"][0], expected)


def test_resnet_layer():
    """C = K = 64 at 28x28, 3x3, stride 1, padding 1, on the default configuration."""
    cfg = CFG
    nrng = np.random.default_rng(64)
    conv = random_conv(nrng, 64, 64, 3, 1, 1, False)
    x = nrng.integers(0, 256, size=(1, 64, 28, 28), dtype=np.uint8)
    c = run_one(cfg, conv, x, layer_tiles(cfg, conv, 28, 28), latency=50)
    assert c["array_busy_cycles"] == 22 * 64 * 28 * 7       # kernel groups x C x rows x groups


def small_layer(seed=3):
    nrng = np.random.default_rng(seed)
    conv = random_conv(nrng, 4, 5, 3, 1, 1, True)
    x = nrng.integers(0, 256, size=(1, 4, 8, 8), dtype=np.uint8)
    return conv, x, prepare_layer(CFG, conv, x)


BAD_DESCRIPTORS = [
    (ErrorCode.BAD_KERNEL, {"kernel_size": 2}),
    (ErrorCode.BAD_STRIDE, {"stride": 3}),
    (ErrorCode.BAD_PADDING, {"kernel_size": 1, "padding": 1}),
    (ErrorCode.ZERO_SIZE, {"channels": 0}),
    (ErrorCode.ZERO_SIZE, {"tile_xo": 0}),
    (ErrorCode.ZERO_SIZE, {"kernel_size": 3, "padding": 0, "height": 2}),
    (ErrorCode.BAD_PITCH, {"in_pitch": 4}),
    (ErrorCode.BAD_PITCH, {"out_pitch": 7}),
    (ErrorCode.LINE_BUFFER_OVERFLOW, {"width": 300, "in_pitch": 300, "out_pitch": 300, "tile_yo": 300}),
    (ErrorCode.TILE_ROWS_OVERFLOW, {"height": 5000, "tile_xo": 5000}),
    (ErrorCode.STREAMING_BUFFER_OVERFLOW, {"channels": 1024, "tile_c": 1024}),
    (ErrorCode.STATIONARY_BUFFER_OVERFLOW, {"kernels": 3000, "tile_k": 3000}),
    (ErrorCode.OUTPUT_BUFFER_OVERFLOW, {"height": 400, "tile_xo": 400, "tile_k": 5}),
    (ErrorCode.BAD_CHANNEL_TILE, {"kernel_size": 1, "padding": 0, "tile_c": 2}),
    (ErrorCode.BAD_DEPTHWISE, {"depthwise": 1}),
    (ErrorCode.ADDRESS_OVERFLOW, {"input_addr": (1 << 40) - 10}),
    (ErrorCode.ADDRESS_OVERFLOW, {"output_addr": (1 << 40) - 100}),
]


def test_bad_descriptors_are_refused_without_dram_access():
    conv, x, good = small_layer()
    layers = [{"run": good, "writes": good.writes_with(CFG, **fields)} for _, fields in BAD_DESCRIPTORS]
    layers.append({"run": good})
    result = run_layers(CFG, layers)
    for (code, fields), layer in zip(BAD_DESCRIPTORS, result["layers"]):
        assert layer["error_code"] == code, f"{fields}: got {ErrorCode(layer['error_code']).name}"
        assert layer["irq"] and layer["status"] & 0b110 == 0b110, f"{fields}: status {layer['status']:#x}"
        assert layer["counters"]["dram_read_bytes"] == 0 and layer["counters"]["dram_write_bytes"] == 0
        assert layer["counters"]["cycles"] < 10, "validation took longer than a few cycles"
    check_guard(result, [good])
    check_run(CFG, good, result["layers"][-1], conv(x)[0])     # ready for the next start


def test_dma_window():
    """Every layer whose reads or writes leave the DMA window is refused with
    OUTSIDE_WINDOW within a few cycles, with no DRAM byte moved (an empty window, the
    reset value, included); a layer exactly filling the window runs."""
    conv, x, good = small_layer(seed=4)
    extents = good.extents()
    lo = min(start for start, _ in extents.values())
    hi = max(end for _, end in extents.values())
    window = (lo, hi - lo)
    assert extents["input"][0] == lo and extents["table"][1] == hi
    out_size = extents["output"][1] - extents["output"][0]
    outside = [
        {"output_addr": hi - out_size + 1},                  # the output's last byte
        {"output_addr": lo - 1},                             # the output's first byte
        {"input_addr": lo - 1},                              # the input's first byte
        {"table_addr": hi - TABLE_BYTES + 1},                # the table's last byte
        {"window": (lo + 1, hi - lo - 1)},                   # the input's first byte
        {"window": (lo, hi - lo - 1)},                       # the table's last byte
        {"window": (0, 0)},                                  # empty: the reset value
    ]
    layers = [{"run": good, "writes": good.writes_with(CFG, **{"window": window, **fields})}
              for fields in outside]
    layers.append({"run": good, "writes": good.writes_with(CFG, window=window)})
    result = run_layers(CFG, layers)
    for fields, layer in zip(outside, result["layers"]):
        assert layer["error_code"] == ErrorCode.OUTSIDE_WINDOW, \
            f"{fields}: got {ErrorCode(layer['error_code']).name}"
        assert layer["irq"] and layer["status"] & 0b110 == 0b110
        assert layer["counters"]["dram_read_bytes"] == 0 and layer["counters"]["dram_write_bytes"] == 0
        assert layer["counters"]["cycles"] < 10
    check_guard(result, [good])
    check_run(CFG, good, result["layers"][-1], conv(x)[0])


def test_dma_window_checked_by_the_host():
    conv, x, good = small_layer(seed=4)
    lo, hi = good.dram.base, good.dram.top
    with pytest.raises(DriverError, match="table .* outside the DMA window"):
        prepare_layer(CFG, conv, x, window=(lo, good.table_addr + TABLE_BYTES - 1 - lo))
    with pytest.raises(DriverError, match="input .* outside the DMA window"):
        prepare_layer(CFG, conv, x, window=(lo + 1, hi - lo))
    assert prepare_layer(CFG, conv, x, window=(lo, good.table_addr + TABLE_BYTES - lo)).writes \
        == good.writes_with(CFG, window=(lo, good.table_addr + TABLE_BYTES - lo))


def test_dma_faults_then_soft_reset():
    conv, x, run = small_layer(seed=8)
    input_addr, input_size = run.dram.regions["input"]
    out = (run.output_addr, run.output_addr + int(np.prod(run.output_shape)))
    layers = [
        {"run": run, "fault": {"ranges": [[input_addr + 100, input_addr + 101]], "code": 2}},
        {"run": run, "soft_reset_first": True},
        {"run": run, "fault": {"ranges": [[out[0] + 64, out[0] + 65]], "code": 3}},
        {"run": run, "soft_reset_first": True},
    ]
    result = run_layers(CFG, layers, latency=20)
    first, second, third, fourth = result["layers"]
    assert first["error_code"] == ErrorCode.DMA_READ_ERROR and first["irq"]
    assert first["counters"]["dram_write_bytes"] < int(np.prod(run.output_shape))
    assert third["error_code"] == ErrorCode.DMA_WRITE_ERROR and third["irq"]
    for layer in (second, fourth):
        check_run(CFG, run, layer, conv(x)[0])
    check_guard(result, [run])


def test_soft_reset_mid_layer():
    """Soft reset while a layer runs: the accelerator stops, then runs the next layer."""
    conv, x, run = small_layer(seed=9)
    from hw.contract import CONTROL_SOFT_RESET, register_map
    control = register_map(CFG)["CONTROL"].offset
    layers = [{"run": run, "writes": run.writes + [(control, 1), (control, CONTROL_SOFT_RESET)]},
              {"run": run}]
    result = run_layers(CFG, layers, latency=20)
    aborted, good = result["layers"]
    assert aborted["error_code"] == 0
    check_run(CFG, run, good, conv(x)[0])
    check_guard(result, [run])
