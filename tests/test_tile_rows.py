"""The tile row limit (AccelConfig.max_tile_rows): the host refuses larger tiles, every
command field holds what the host and the hardware validation accept, and the
simulation's hang timeout covers DMA-bound tilings."""

import numpy as np
import pytest
from amaranth import Shape

from host.golden import schedule, tiling
from host.runtime.driver import prepare_layer
from host.compiler.planner import ConvShape, plan
from host.golden.quant import QuantConv
from host.runtime.sim import timeout_cycles
from hw.config import AccelConfig, tile_rows_limit, word_bytes_for


def conv(c, k, kernel, stride, padding):
    rng = np.random.default_rng(0)
    return QuantConv(weight=rng.integers(-128, 128, (k, c, kernel, kernel)).astype(np.int8),
                     bias_q=np.zeros(k), multiplier=np.float32(1e-3), input_zero_point=3,
                     output_zero_point=0, stride=stride, padding=padding)


def descriptor(c, k, h, w, kernel, stride, padding, tiles):
    return tiling.descriptor(input_addr=0, weight_addr=0, params_addr=0, output_addr=0,
                             channels=c, height=h, width=w, kernels=k, kernel_size=kernel,
                             stride=stride, padding=padding,
                             **{f"tile_{n}": v for n, v in tiles.items()})


def test_limit_is_derived_from_the_streaming_buffer():
    assert AccelConfig().max_tile_rows == 65536 // 16 == 4096
    assert AccelConfig(yp=8).max_tile_rows == 65536 // word_bytes_for(8)
    assert AccelConfig(streaming_buffer_depth=1 << 22, yp=1).max_tile_rows == 65535
    # no tile that fits the streaming buffer has more rows than the limit
    cfg = AccelConfig()
    desc = descriptor(1, 1, 20000, 1, 1, 1, 0, {"k": 1, "c": 1, "xo": 4097, "yo": 1})
    assert schedule.buffer_needs(cfg, desc)["streaming_buffer_depth"] > cfg.streaming_buffer_depth


def test_host_refuses_tiles_with_more_rows_than_the_limit():
    cfg = AccelConfig()
    x = np.zeros((1, 1, 5000, 1), np.uint8)
    with pytest.raises(schedule.BufferOverflow, match=r"max_tile_rows >= 5000 rows per tile, "
                                                      r"the configuration has 4096"):
        prepare_layer(cfg, conv(1, 1, 1, 1, 0), x, {"k": 1, "c": 1, "xo": 5000, "yo": 1})
    # output rows count too: 3x3 with padding 2 has more output rows than input rows
    desc = descriptor(1, 1, 4095, 1, 3, 1, 2, {"k": 1, "c": 1, "xo": 4097, "yo": 1})
    assert schedule.buffer_needs(cfg, desc)["max_tile_rows"] == 4097
    with pytest.raises(schedule.BufferOverflow, match="max_tile_rows"):
        schedule.check_fits(cfg, desc)
    # the reported tall layers are within the limit and accepted
    prepare_layer(cfg, conv(2, 3, 3, 1, 1), np.zeros((1, 2, 700, 6), np.uint8),
                  {"k": 3, "c": 2, "xo": 600, "yo": 6})
    prepare_layer(cfg, conv(1, 3, 3, 2, 1), np.zeros((1, 1, 900, 4), np.uint8),
                  {"k": 3, "c": 1, "xo": 450, "yo": 2})


def test_planner_stays_within_the_limit():
    cfg = AccelConfig()
    tiles = plan(cfg, ConvShape(1, 1, 6000, 1, 1, 1, 0)).tiles
    assert tiles["xo"] <= cfg.max_tile_rows


def width(layout, name):
    return Shape.cast(layout[name].shape).width


@pytest.mark.parametrize("cfg", [AccelConfig(), AccelConfig(kp=1, yp=1),
                                 AccelConfig(kp=2, yp=3, streaming_buffer_depth=1 << 20,
                                             stationary_buffer_depth=1 << 18,
                                             output_buffer_depth=1 << 20, line_buffer_depth=4096)])
def test_command_fields_hold_every_accepted_value(cfg):
    """Largest value of each line buffer / output buffer command field that a tile the
    host and the hardware validation accept can produce, against the field's width."""
    from hw.datapath.core import ComputeCore
    core = ComputeCore(cfg)
    lb = core.line_buffer.command_layout
    out = core.output.cmd_layout
    rows = cfg.max_tile_rows                      # input rows and output rows of a tile
    out_rows = min(rows, cfg.output_buffer_depth // (cfg.kp * cfg.yp))
    channel_images = cfg.stationary_buffer_depth // cfg.kp      # T_C * ceil(T_K / KP)
    out_cols = cfg.line_buffer_depth + 2                        # 3x3, padding 2
    kernels = min(cfg.stationary_buffer_depth, cfg.output_buffer_depth // cfg.yp, 65535)
    for layout, name, value in [
            (lb, "rows_in", rows), (lb, "out_rows", rows), (lb, "cols_in", cfg.line_buffer_depth),
            (lb, "groups", -(-out_cols // cfg.yp)), (lb, "channels", channel_images),
            (out, "out_rows", out_rows), (out, "out_cols", out_cols),
            (out, "groups", -(-out_cols // cfg.yp)), (out, "kernels", kernels),
            (out, "kernel_groups", -(-kernels // cfg.kp))]:
        assert value < 1 << width(layout, name), f"{name} = {value} does not fit"
    assert core.line_buffer.max_rows == tile_rows_limit(cfg)


# Reported as hangs: tilings one or two output columns wide. They finish bit-exactly; each
# input row is its own short DMA read bound by DRAM latency (cycles measured at latency 50).
SHORT_ROW_LAYERS = [
    ((30, 14, 32, 9, 1, 2, 0), {"k": 1, "c": 28, "xo": 5, "yo": 1}, 403_121),
    ((30, 14, 32, 9, 3, 1, 1), {"k": 1, "c": 30, "xo": 5, "yo": 1}, 1_144_141),
    ((8, 39, 39, 34, 1, 2, 0), {"k": 1, "c": 1, "xo": 15, "yo": 2}, 766_652),
    ((15, 26, 33, 19, 1, 1, 0), {"k": 23, "c": 13, "xo": 3, "yo": 1}, 231_252),
]


@pytest.mark.parametrize("shape, tiles, cycles", SHORT_ROW_LAYERS)
def test_timeout_covers_dma_bound_tilings(shape, tiles, cycles):
    """The testbench's hang timeout is at least twice what these layers take."""
    assert timeout_cycles(AccelConfig(), descriptor(*shape, tiles), latency=50) >= 2 * cycles
