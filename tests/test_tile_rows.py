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
    # no tile that fits the streaming buffer has more rows than the limit: a 1x1 tile's
    # rows take a word each, a 3x3 tile's a row word each, nine to a word
    cfg = AccelConfig()
    words = cfg.streaming_buffer_words
    desc = descriptor(1, 1, 20000, 1, 1, 2, 0, {"k": 1, "c": 1, "xo": 2049, "yo": 1})
    assert schedule.buffer_needs(cfg, desc)["streaming_buffer_words"] == 4098 > words
    flat = descriptor(1, 1, 20000, 1, 1, 1, 0, {"k": 1, "c": 1, "xo": 4097, "yo": 1})
    assert schedule.buffer_needs(cfg, flat)["streaming_buffer_words"] == -(-4097 // 16)
    for xo, fits in ((cfg.max_tile_rows - 1, False), (9 * words - 2, True), (9 * words - 1, False)):
        desc = descriptor(1, 1, 20000, 1, 3, 1, 1, {"k": 1, "c": 1, "xo": xo, "yo": 1})
        rows = schedule.buffer_needs(cfg, desc)["max_tile_rows"]
        assert rows == xo + 2
        assert (schedule.buffer_needs(cfg, desc)["streaming_buffer_words"] <= words) == fits
        assert not fits or rows <= cfg.max_tile_rows


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


@pytest.mark.parametrize("cfg", [AccelConfig(), AccelConfig(kp=1, yp=1),
                                 AccelConfig(kp=2, yp=3, streaming_buffer_depth=1 << 20,
                                             stationary_buffer_depth=1 << 18,
                                             output_buffer_depth=1 << 20, line_buffer_depth=4096)])
def test_pointwise_command_fields_hold_every_accepted_value(cfg):
    """Largest value of each streaming buffer, pointwise reader, stationary buffer and
    repacker command field a 1x1 or 3x3 tile the validation accepts can produce: W words
    of 9 row words (W = streaming_buffer_words) hold at most 9 W row words (3x3) or W
    words of blocks x rows x row words (1x1, a flat tile's row of pixels in W words of B
    bytes); a used 1x1 row step (two rows or more) is at most 2 / 3 W; kernel groups x
    channel blocks (or channels) are at most stationary depth / KP; a flat tile has at most
    output depth / KP columns."""
    from hw.datapath.core import ComputeCore
    core = ComputeCore(cfg)
    W, B = cfg.streaming_buffer_words, core.word_bytes
    images = cfg.stationary_buffer_depth // cfg.kp
    # kernel groups of a tile: T_K <= 65535, groups x KP x YP <= output depth
    groups_k = min(images, -(-65535 // cfg.kp), cfg.output_buffer_depth // (cfg.kp * cfg.yp))
    sb, pw = core.streaming, core.pointwise_reader
    for layout, name, value in [
            (sb.load_layout, "words", 9 * W), (sb.load_layout, "block_words", W),
            (sb.load_layout, "block_lanes", 9),
            (sb.replay_layout, "words", 9 * W), (sb.replay_layout, "blocks", W),
            (sb.replay_layout, "rows", cfg.max_tile_rows), (sb.replay_layout, "row_words", W),
            (sb.replay_layout, "row_step", 2 * W // 3), (sb.replay_layout, "block_words", W),
            (sb.replay_layout, "replays", groups_k),
            (pw.command_layout, "channels", images), (pw.command_layout, "out_rows", cfg.max_tile_rows),
            (pw.command_layout, "groups", -(-min(cfg.output_buffer_depth // cfg.kp, W * B) // cfg.yp)),
            (pw.command_layout, "row_words", W), (pw.command_layout, "stride", 2),
            (core.stationary.load_layout, "kernels", min(images * cfg.kp, 65535)),
            (core.stationary.load_layout, "channels", images),
            (core.stationary.load_layout, "kernel_groups", images),
            (core.iact_packer.cmd_layout, "row_bytes", W * B),
            (core.weight_packer.cmd_layout, "row_bytes", 9 * cfg.stationary_buffer_depth)]:
        assert value < 1 << width(layout, name), f"{name} = {value} does not fit"


# Reported as hangs: tilings one or two output columns wide. They finish bit-exactly; each
# input row is its own short DMA read bound by DRAM latency (cycles measured at latency 50;
# the 1x1 layers with channel tiles of whole 9-channel blocks, on channel-packed 1x1 hardware).
SHORT_ROW_LAYERS = [
    ((30, 14, 32, 9, 1, 2, 0), {"k": 1, "c": 27, "xo": 5, "yo": 1}, 464_097),
    ((30, 14, 32, 9, 3, 1, 1), {"k": 1, "c": 30, "xo": 5, "yo": 1}, 1_144_143),
    ((8, 39, 39, 34, 1, 2, 0), {"k": 1, "c": 8, "xo": 15, "yo": 2}, 752_432),
    ((15, 26, 33, 19, 1, 1, 0), {"k": 23, "c": 9, "xo": 3, "yo": 1}, 169_200),
]


@pytest.mark.parametrize("shape, tiles, cycles", SHORT_ROW_LAYERS)
def test_timeout_covers_dma_bound_tilings(shape, tiles, cycles):
    """The testbench's hang timeout is at least twice what these layers take."""
    assert timeout_cycles(AccelConfig(), descriptor(*shape, tiles), latency=50) >= 2 * cycles


def check_commands_fit(cfg, desc):
    """Every field of every command host.golden.schedule gives the compute core for
    ``desc`` (which the validation accepts) holds its value."""
    from hw.datapath.core import ComputeCore
    schedule.check_fits(cfg, desc)
    core = ComputeCore(cfg)
    for stream, commands in schedule.core_commands(cfg, desc, 0).items():
        layout = core.signature.members[stream].signature.members["payload"].shape
        for command in commands:
            for name, value in command.items():
                assert 0 <= value < 1 << width(layout, name), f"{stream}.{name} = {value} does not fit"


BIG = AccelConfig(kp=2, yp=3, streaming_buffer_depth=1 << 20, stationary_buffer_depth=1 << 18,
                  output_buffer_depth=1 << 20, line_buffer_depth=4096)


@pytest.mark.parametrize("cfg, shape, tiles", [
    (AccelConfig(), (9, 3, 341, 16, 1, 1, 0), {"k": 3, "c": 9, "xo": 341, "yo": 16}),     # 5456 pixels
    (AccelConfig(), (27, 3, 60, 60, 1, 2, 0), {"k": 3, "c": 27, "xo": 2, "yo": 30}),
    (AccelConfig(kp=1, yp=1), (1, 1, 1, 900, 1, 2, 0), {"k": 1, "c": 1, "xo": 1, "yo": 450}),
    (BIG, (1, 1, 4095, 16, 1, 1, 0), {"k": 1, "c": 1, "xo": 4095, "yo": 16}),            # 65520 columns
])
def test_pointwise_commands_fit_their_fields(cfg, shape, tiles):
    """Large 1x1 tiles the validation accepts: flat tiles of the most pixels, stride-2 rows."""
    check_commands_fit(cfg, descriptor(*shape, tiles))


def test_flat_tile_columns_beyond_max_output_dim_are_refused():
    """A flat 1x1 tile is one row of T_XO * YO columns: more than max_output_dim is refused
    (the host here, the controller with OUTPUT_BUFFER_OVERFLOW)."""
    with pytest.raises(schedule.BufferOverflow, match="max_output_dim >= 116496"):
        schedule.check_fits(BIG, descriptor(1, 1, 7281, 16, 1, 1, 0, {"k": 1, "c": 1, "xo": 7281, "yo": 16}))


def test_one_row_stride2_row_step():
    """A stride-2 1x1 tile of one input row longer than half the streaming buffer: the
    replay's row step (two rows of words) fits its field."""
    cfg = AccelConfig(kp=3, yp=4, line_buffer_depth=64, streaming_buffer_depth=4096,
                      stationary_buffer_depth=256, output_buffer_depth=2048)
    check_commands_fit(cfg, descriptor(1, 1, 1, 256, 1, 2, 0, {"k": 1, "c": 1, "xo": 1, "yo": 128}))
