"""The tiling planner: exact byte / transfer / beat model, buffer bounds, channel tiles of
1x1 layers, search vs exhaustive, errors."""

import itertools

import pytest

from host.golden import schedule, tiling
from host.golden.tiling import ceil_div
from host.compiler.planner import (ConvShape, candidates, descriptor_for, exhaustive_plan, layer_bytes,
                                   min_array_beats, model, plan)
from hw.config import CHANNEL_BLOCK, AccelConfig
from hw.contract import DmaKind

SMALL = AccelConfig(kp=2, yp=2, line_buffer_depth=8, streaming_buffer_depth=256,
                    stationary_buffer_depth=16, output_buffer_depth=64)

LAYERS = [ConvShape(8, 7, 6, 6), ConvShape(5, 9, 9, 7, 3, 2, 1), ConvShape(12, 4, 5, 5, 1, 1, 0),
          ConvShape(3, 5, 8, 8, 3, 1, 0), ConvShape(6, 6, 7, 7, 1, 2, 0), ConvShape(20, 5, 4, 6, 1, 1, 0)]
# 1x1 layers of every kind: flat, stride 2, Linear on a 1 x N image, few and many channels
POINTWISE = [ConvShape(30, 10, 9, 11, 1, 1, 0), ConvShape(20, 9, 13, 11, 1, 2, 0),
             ConvShape(64, 40, 1, 1, 1, 1, 0), ConvShape(40, 12, 1, 6, 1, 1, 0),
             ConvShape(7, 5, 6, 6, 1, 1, 0), ConvShape(50, 24, 4, 4, 1, 1, 0)]
DEPTHWISE = [ConvShape(12, 12, 8, 8, 3, 1, 1, depthwise=True),
             ConvShape(10, 10, 9, 7, 3, 2, 1, depthwise=True)]


def valid_tiles(layer, values):
    """Tile combinations of ``values`` the descriptor accepts."""
    for tk, tc, txo, tyo in itertools.product(values["k"], values["c"], values["xo"], values["yo"]):
        tiles = {"k": tk, "c": tc, "xo": txo, "yo": tyo}
        try:
            yield tiles, descriptor_for(layer, tiles)
        except ValueError:
            continue


@pytest.mark.parametrize("layer", LAYERS + POINTWISE + DEPTHWISE + [ConvShape(64, 64, 28, 28),
                                                                     ConvShape(64, 256, 14, 14, 1, 1, 0)])
@pytest.mark.parametrize("cfg", [AccelConfig(), SMALL, AccelConfig(kp=8, yp=8)])
def test_plan_never_exceeds_a_buffer(cfg, layer):
    try:
        p = plan(cfg, layer)
    except schedule.BufferOverflow:
        pytest.skip("layer does not fit this configuration")
    desc = descriptor_for(layer, p.tiles)           # validates the tiles
    schedule.check_fits(cfg, desc)
    assert p.buffers == schedule.buffer_needs(cfg, desc)


@pytest.mark.parametrize("channels", [1, 8, 9, 10, 17, 18, 64, 100, 256, 1000])
def test_pointwise_channel_tiles_are_whole_blocks(channels):
    """A 1x1 layer's T_C candidates are multiples of 9 or all C (what tiling.validate
    accepts), from one block up to all channels; a 3x3 layer's start at one channel."""
    cfg = AccelConfig()
    values = candidates(cfg, ConvShape(channels, 16, 8, 8, 1, 1, 0))["c"]
    assert all(tc % CHANNEL_BLOCK == 0 or tc == channels for tc in values)
    assert min(values) == min(channels, CHANNEL_BLOCK) and max(values) == channels
    assert min(candidates(cfg, ConvShape(channels, 16, 8, 8))["c"]) == 1


@pytest.mark.parametrize("layer", LAYERS + POINTWISE[:2] + POINTWISE[3:5] + DEPTHWISE)
@pytest.mark.parametrize("cfg", [AccelConfig(), SMALL])
def test_plan_equals_exhaustive_search(cfg, layer):
    p, e = plan(cfg, layer), exhaustive_plan(cfg, layer)
    assert (p.cycles, p.dram_read_bytes + p.dram_write_bytes) == \
        (e.cycles, e.dram_read_bytes + e.dram_write_bytes)
    # exhaustive really is exhaustive: no integer tile that fits is modelled faster
    every = {"k": range(1, layer.kernels + 1), "c": range(1, layer.channels + 1),
             "xo": range(1, layer.out_height + 1), "yo": range(1, layer.out_width + 1)}
    best = None
    for tiles, desc in valid_tiles(layer, every):
        try:
            schedule.check_fits(cfg, desc)
        except schedule.BufferOverflow:
            continue
        c = model(cfg, desc)["cycles"]
        best = c if best is None else min(best, c)
    assert e.cycles == best


@pytest.mark.parametrize("layer", LAYERS + POINTWISE + DEPTHWISE + [ConvShape(20, 9, 13, 11, 3, 2, 1)])
@pytest.mark.parametrize("cfg", [AccelConfig(), SMALL])
def test_model_counts_are_the_tilers_and_the_steps(cfg, layer):
    """DRAM bytes and transfers are the Tiler's (``tiling.commands``), steps the loop
    nest's; array beats are the steps' ``ceil(tk / KP) * channels * pixel groups``,
    channels being T_C (3x3), its 9-channel blocks (1x1) or 1 (depthwise), pixel groups
    ``txo * ceil(tyo / YP)`` or, for a flat 1x1 step, ``ceil(txo * tyo / YP)``; no tiling
    takes fewer beats than ``min_array_beats``."""
    vals = candidates(SMALL, layer)
    for tiles, desc in itertools.islice(valid_tiles(layer, vals), 0, None, 13):
        m = model(cfg, desc)
        assert (m["dram_read_bytes"], m["dram_write_bytes"]) == layer_bytes(desc)
        assert m["dma_transfers"] == len(tiling.commands(desc))
        beats = steps = 0
        for st in tiling.steps(desc):
            steps += 1
            channels = (1 if layer.depthwise else ceil_div(st.tc, CHANNEL_BLOCK) if layer.kernel_size == 1
                        else st.tc)
            flat = (layer.kernel_size == 1 and layer.stride == 1 and tiles["yo"] >= layer.out_width)
            pixels = ceil_div(st.txo * st.tyo, cfg.yp) if flat else st.txo * ceil_div(st.tyo, cfg.yp)
            beats += ceil_div(st.tk, cfg.kp) * channels * pixels
        assert m["array_busy_cycles"] == beats and m["steps"] == steps
        assert min_array_beats(cfg, layer) <= beats <= m["cycles"]


def test_flat_steps_pack_the_pixels_of_whole_rows():
    """A full-width stride-1 1x1 tile runs its pixels as one row: 7 x 5 pixels on YP = 4
    take ceil(35 / 4) = 9 beats per kernel group and block, not 7 * ceil(5 / 4) = 14;
    a narrower tile of the same layer does not."""
    layer = ConvShape(9, 3, 7, 5, 1, 1, 0)
    cfg = AccelConfig()
    flat = model(cfg, descriptor_for(layer, {"k": 3, "c": 9, "xo": 7, "yo": 5}))
    rows = model(cfg, descriptor_for(layer, {"k": 3, "c": 9, "xo": 7, "yo": 4}))
    assert flat["array_busy_cycles"] == 9
    assert rows["array_busy_cycles"] == 7 * (1 + 1)


def test_linear_is_bound_by_weight_bandwidth():
    """Linear at batch 1 (ResNet-50's 2048 -> 1000) uses each weight once: the planner's
    tiles read them in long runs, and the modelled cycles stay within 10% of the weight
    bytes over the bus width (one bus word per cycle)."""
    cfg = AccelConfig()
    layer = ConvShape(2048, 1000, 1, 1, 1, 1, 0)
    p = plan(cfg, layer)
    weights = [length for kind, _, length in tiling.transfers(descriptor_for(layer, p.tiles))
               if kind == DmaKind.WEIGHT]
    assert sum(weights) == ceil_div(2048, CHANNEL_BLOCK) * CHANNEL_BLOCK * 1000
    assert sum(weights) / len(weights) >= 4096
    assert p.cycles <= 1.1 * sum(weights) / (cfg.axi_data_width // 8)


def test_overflow_names_the_buffer():
    # Every valid AccelConfig holds the smallest tile; a configuration-like object with a
    # line buffer below that exercises the error path.
    from types import SimpleNamespace
    cfg = SimpleNamespace(kp=2, yp=2, line_buffer_depth=2, streaming_buffer_depth=1 << 16,
                          streaming_buffer_words=1 << 16, stationary_buffer_depth=4096,
                          output_buffer_depth=4096, max_output_dim=4096, macs_per_cycle=36,
                          axi_data_width=128, max_outstanding_reads=8, max_outstanding_writes=8,
                          drain_words=1, depthwise_lanes=2, max_depthwise_tile_k=65535)
    with pytest.raises(schedule.BufferOverflow, match=r"line_buffer_depth >= 3 activations per row"):
        plan(cfg, ConvShape(4, 4, 12, 12, 3, 1, 0))
    # a 1x1 layer's smallest tile is one channel block: its stationary need is KP slices
    cfg.stationary_buffer_depth = 1
    with pytest.raises(schedule.BufferOverflow, match=r"stationary_buffer_depth >= 2 weight slices"):
        plan(cfg, ConvShape(40, 4, 12, 12, 1, 1, 0))


def test_depthwise_tiles_take_the_kernels_channels():
    """A depthwise layer's tiles have T_C == T_K (what tiling.validate accepts), and the
    driver takes the planner's tiles for a depthwise conv."""
    import numpy as np
    from host.golden.quant import QuantConv
    from host.runtime.driver import prepare_layer
    conv = QuantConv(weight=np.ones((32, 1, 3, 3), np.int8), bias_q=np.zeros(32), multiplier=0.01,
                     input_zero_point=3, output_zero_point=0, stride=1, padding=1, groups=32)
    layer = ConvShape.from_conv(conv, 14, 14)
    assert layer.depthwise and layer.macs == 32 * 9 * 14 * 14
    tiles = plan(AccelConfig(), layer).tiles
    assert tiles["c"] == tiles["k"]
    run = prepare_layer(AccelConfig(), conv, np.zeros((1, 32, 14, 14), np.uint8), tiles)
    assert {n: run.descriptor["tile_" + n] for n in tiles} == tiles and run.descriptor["depthwise"]


def test_depthwise_tiles_on_a_wide_array_are_one_group_of_lanes():
    """With KP > 9 a depthwise tile holds at most 9 channels (the line buffer's lanes):
    the planner's tiles keep to it, the driver refuses a larger tile naming the limit and
    the golden machine (the hardware's check) answers BAD_DEPTHWISE."""
    import numpy as np
    from host.golden.machine import descriptor_error as validate
    from host.golden.quant import QuantConv
    from host.runtime.driver import prepare_layer
    from hw.contract import ErrorCode
    cfg = AccelConfig(kp=16, yp=4)
    assert cfg.depthwise_lanes == 9 and AccelConfig(kp=6).depthwise_lanes == 6
    assert AccelConfig(kp=6, max_depthwise_lanes=2).max_depthwise_tile_k == 2
    with pytest.raises(ValueError, match=r"max_depthwise_lanes must be in \[1, 9\]"):
        AccelConfig(max_depthwise_lanes=10)
    conv = QuantConv(weight=np.ones((40, 1, 3, 3), np.int8), bias_q=np.zeros(40), multiplier=0.01,
                     input_zero_point=3, output_zero_point=0, stride=1, padding=1, groups=40)
    tiles = plan(cfg, ConvShape.from_conv(conv, 14, 14)).tiles
    assert tiles["c"] == tiles["k"] <= 9
    x = np.zeros((1, 40, 14, 14), np.uint8)
    run = prepare_layer(cfg, conv, x, tiles)
    assert validate(cfg, run.descriptor, run.table_addr, (0, 1 << 40)) == ErrorCode.NONE
    with pytest.raises(schedule.BufferOverflow, match=r"max_depthwise_tile_k >= 10 depthwise channels"):
        prepare_layer(cfg, conv, x, dict(tiles, k=10, c=10))
    wide = dict(run.descriptor, tile_k=10, tile_c=10)
    assert validate(cfg, wide, run.table_addr, (0, 1 << 40)) == ErrorCode.BAD_DEPTHWISE
    assert validate(AccelConfig(kp=9), wide, run.table_addr, (0, 1 << 40)) != ErrorCode.BAD_DEPTHWISE


def test_layer_tiles_are_the_plans_and_the_driver_plans_nothing():
    import numpy as np
    from host.compiler.planner import layer_tiles
    from host.runtime.driver import prepare_layer
    from host.golden.quant import QuantConv
    conv = QuantConv(weight=np.ones((16, 24, 3, 3), np.int8), bias_q=np.zeros(16), multiplier=0.01,
                     input_zero_point=3, output_zero_point=0, stride=1, padding=1)
    tiles = layer_tiles(AccelConfig(), conv, 20, 20)
    assert tiles == plan(AccelConfig(), ConvShape.from_conv(conv, 20, 20)).tiles
    assert set(tiles) == {"k", "c", "xo", "yo"}
    run = prepare_layer(AccelConfig(), conv, np.zeros((1, 24, 20, 20), np.uint8))     # whole layer
    assert {n: run.descriptor["tile_" + n] for n in tiles} == {"k": 16, "c": 24, "xo": 20, "yo": 20}


def test_a_drain_faster_than_the_bus_waits_for_the_bus():
    """Four words of eight outputs drained a cycle (32 bytes) outrun the 16-byte write
    port: a 1x1 layer with few channels and many outputs takes at least its output bytes
    over the bus width (MobileNetV2's 16 -> 96 expansion at 112 x 112: the RTL measured
    76,419 cycles for its 1,204,224 output bytes)."""
    cfg = AccelConfig(kp=24, yp=8, dsp_packing=True, output_buffer_depth=1 << 16, drain_words=4)
    layer = ConvShape(16, 96, 112, 112, 1, 1, 0)
    p = plan(cfg, layer)
    out_bytes = 96 * 112 * 112
    assert p.dram_write_bytes == out_bytes
    assert out_bytes / 16 <= p.cycles <= 1.1 * out_bytes / 16
