"""DescriptorCheck: a layer descriptor's ErrorCode, computed over a few pipeline stages."""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.arith import ceil_div_const
from hw.config import CHANNEL_BLOCK, AccelConfig, word_bytes_for
from hw.datapath.pipeline import registered
from hw.contract import PARAM_BYTES, TABLE_BYTES, ErrorCode, LayerDescriptor

__all__ = ["DescriptorCheck"]


class DescriptorCheck(wiring.Component):
    """Checks a layer (``descriptor``, ``table_addr``) against the configuration and the
    DMA window ``[window_base, window_base + window_size)``.

    ``code`` (``ErrorCode``, 0 when the layer is valid) is the first failing check, in
    this order: kernel, stride, padding, zero sizes, pitches, the 1x1 channel tile,
    depthwise, every buffer against the largest tile, the tile's rows against
    ``max_tile_rows``, then every byte range the layer reads or writes
    (``hw.contract.layer_extents``) against the address width and the window.

    Latency: ``code`` is valid ``latency`` cycles after the inputs last changed (they
    must hold still meanwhile); the stages are registers, so no path goes through
    more than one multiplication or one wide addition or comparison.
    """

    latency = 6

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        super().__init__({
            "descriptor": In(LayerDescriptor), "table_addr": In(64),
            "window_base": In(64), "window_size": In(64),
            "code": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        d = self.descriptor
        word = word_bytes_for(cfg.yp)
        word_shift = word.bit_length() - 1

        def reg(value, name):
            return registered(m, value, name)

        # stage 1: output sizes, tile spans, group counts, the field checks
        R, S, P = d.kernel_size, d.stride, d.padding
        stride2 = reg(S == 2, "stride2")
        kernel1 = reg(R == 1, "kernel1")
        kernel3 = reg(R == 3, "kernel3")
        depthwise = reg(d.depthwise, "depthwise")

        def out_size(size):
            span = size + (P << 1) - R
            return Mux(S == 2, span >> 1, span) + 1

        def span(tile):         # host.golden.schedule.buffer_needs
            return Mux(R == 1, Mux(S == 2, tile << 1, tile), Mux(S == 2, (tile - 1) << 1, tile - 1) + R)

        xo, yo = reg(out_size(d.height)[:17], "xo"), reg(out_size(d.width)[:17], "yo")
        rows_full, cols_full = span(d.tile_xo), span(d.tile_yo)
        rows = reg(Mux(rows_full > d.height, d.height, rows_full)[:18], "rows")
        cols = reg(Mux(cols_full > d.width, d.width, cols_full)[:18], "cols")
        groups_k = reg(ceil_div_const(d.tile_k, cfg.kp), "groups_k")
        groups_y = reg(ceil_div_const(d.tile_yo, cfg.yp), "groups_y")
        channel_groups = reg(ceil_div_const(d.tile_c, cfg.depthwise_lanes), "channel_groups")   # depthwise
        blocks = reg(ceil_div_const(d.tile_c, CHANNEL_BLOCK), "blocks")
        weight_blocks = reg(ceil_div_const(d.channels, CHANNEL_BLOCK), "weight_blocks")
        window_end = reg(self.window_base + self.window_size, "window_end")
        field_checks = [
            (ErrorCode.BAD_KERNEL, (R != 1) & (R != 3)),
            (ErrorCode.BAD_STRIDE, (S != 1) & (S != 2)),
            (ErrorCode.BAD_PADDING, P > R - 1),
            (ErrorCode.ZERO_SIZE, Cat(*(getattr(d, f) == 0 for f in (
                "channels", "height", "width", "kernels", "tile_k", "tile_c", "tile_xo", "tile_yo"))).any()
             | (d.height + (P << 1) < R) | (d.width + (P << 1) < R)),
        ]
        field_checks = [(error, reg(condition, f"check_{error.name.lower()}"))
                        for error, condition in field_checks]
        bad_depthwise = reg(d.depthwise & ((R != 3) | (d.channels != d.kernels) | (d.tile_c != d.tile_k) |
                                           (d.tile_k > cfg.max_depthwise_tile_k if cfg.depthwise_lanes < cfg.kp else 0)),
                            "check_bad_depthwise")

        # stage 2: first products, the size checks of one comparison
        words = (cols + word - 1) >> word_shift
        row_words = reg(rows * words, "row_words")
        rows_cols = reg(rows * cols, "rows_cols")
        flat = reg(kernel1 & ~stride2 & (d.tile_yo >= yo) & (d.in_pitch == d.width) & (d.out_pitch == yo),
                   "flat")    # a flat 1x1 tile (host.golden.tiling.flat_tiles)
        out_rows = reg(Mux(d.tile_xo < xo, d.tile_xo, xo), "out_rows")
        channel_image = reg(d.channels * d.height, "channel_image")
        output_image = reg(d.kernels * xo, "output_image")
        pairs = reg(d.kernels * d.channels, "pairs")
        block_kernels = reg(weight_blocks * d.kernels, "block_kernels")
        stationary_rows = reg(groups_k * cfg.kp, "stationary_rows")
        stationary_units = reg(Mux(depthwise, 1, Mux(kernel1, blocks, d.tile_c)), "stationary_units")
        output_tiles = reg(groups_k * d.tile_xo, "output_tiles")
        output_columns = reg(groups_y * (cfg.kp * cfg.yp), "output_columns")
        checks_2 = [
            (ErrorCode.BAD_PITCH, (d.in_pitch < d.width) | (d.out_pitch < yo)),
            (ErrorCode.BAD_CHANNEL_TILE, kernel1 & (d.tile_c < d.channels) & (blocks * CHANNEL_BLOCK != d.tile_c)),
            (ErrorCode.LINE_BUFFER_OVERFLOW, ~kernel1 & (cols > cfg.line_buffer_depth)),
            # the line buffer counts input rows and output rows of a tile up to this
            (ErrorCode.TILE_ROWS_OVERFLOW, rows > cfg.max_tile_rows),
        ]
        checks_2 = [(error, reg(condition, f"check_{error.name.lower()}")) for error, condition in checks_2]

        # stage 3: second products
        flat_words = reg((rows_cols + word - 1) >> word_shift, "flat_words")
        channel_words = reg(d.tile_c * row_words, "channel_words")        # 3x3: all channels' rows
        dw_words = reg(channel_groups * row_words, "dw_words")
        input_bytes = reg(channel_image * d.in_pitch, "input_bytes")
        output_bytes = reg(output_image * d.out_pitch, "output_bytes")
        weight_bytes = reg(Mux(depthwise, d.kernels * CHANNEL_BLOCK,
                               Mux(kernel1, block_kernels * CHANNEL_BLOCK, Mux(kernel3, pairs * 9, pairs))),
                           "weight_bytes")
        stationary_need = reg(stationary_rows * stationary_units, "stationary_need")
        output_need = reg(output_tiles * output_columns, "output_need")
        flat_output = reg(out_rows * yo, "flat_output")
        rows_overflow = reg(out_rows > cfg.max_tile_rows, "rows_overflow")

        # stage 4: the 1x1 streaming words, the byte ranges' ends
        pointwise_words = reg(blocks * Mux(flat, flat_words, row_words), "pointwise_words")
        residual_addr = Mux(d.residual, d.residual_addr, d.output_addr)
        extents = [(d.input_addr, d.input_addr + input_bytes),
                   (d.weight_addr, d.weight_addr + weight_bytes),
                   (d.params_addr, d.params_addr + d.kernels * PARAM_BYTES),
                   (d.output_addr, d.output_addr + output_bytes),
                   (self.table_addr, self.table_addr + TABLE_BYTES),
                   # a fused residual is read as the output is laid out (a layer without
                   # one: its output's range again, which the output's own checks cover)
                   (residual_addr, residual_addr + output_bytes)]
        ends = [reg(end, f"extent_end_{i}") for i, (_, end) in enumerate(extents)]
        buffer_checks = [
            (ErrorCode.STATIONARY_BUFFER_OVERFLOW, stationary_need > cfg.stationary_buffer_depth),
            (ErrorCode.OUTPUT_BUFFER_OVERFLOW,
             (output_need > cfg.output_buffer_depth) |
             # a flat 1x1 tile is one row of T_XO * YO columns
             (flat & (flat_output > cfg.max_output_dim))),
        ]
        buffer_checks = [(error, reg(condition, f"check_{error.name.lower()}"))
                         for error, condition in buffer_checks]
        rows_overflow_4 = reg(rows_overflow, "rows_overflow_4")
        # ceil(channel_words / CHANNEL_BLOCK) > W  <=>  channel_words > W * CHANNEL_BLOCK
        limit = cfg.streaming_buffer_words
        streaming_3x3 = reg(channel_words > limit * CHANNEL_BLOCK, "streaming_3x3")
        streaming_dw = reg(dw_words > limit, "streaming_dw")

        # stage 5: the streaming buffer, the ranges against the address space and the window
        top = Const(1 << cfg.axi_addr_width, cfg.axi_addr_width + 2)
        streaming = Mux(depthwise, streaming_dw, Mux(kernel1, pointwise_words > limit, streaming_3x3))
        checks_5 = {
            ErrorCode.STREAMING_BUFFER_OVERFLOW: streaming,
            ErrorCode.ADDRESS_OVERFLOW: Cat(*(end > top for end in ends)).any(),
            ErrorCode.OUTSIDE_WINDOW: Cat(*((start < self.window_base) | (end > window_end)
                                            for (start, _), end in zip(extents, ends))).any(),
        }
        checks_5 = {error: reg(condition, f"check_{error.name.lower()}") for error, condition in checks_5.items()}

        # the first failing check wins (checks of earlier stages hold their value)
        ordered = [*field_checks, (ErrorCode.BAD_PITCH, checks_2[0][1]),
                   (ErrorCode.BAD_CHANNEL_TILE, checks_2[1][1]),
                   (ErrorCode.BAD_DEPTHWISE, bad_depthwise),
                   (ErrorCode.LINE_BUFFER_OVERFLOW, checks_2[2][1]),
                   (ErrorCode.TILE_ROWS_OVERFLOW, checks_2[3][1] | rows_overflow_4),
                   (ErrorCode.STREAMING_BUFFER_OVERFLOW, checks_5[ErrorCode.STREAMING_BUFFER_OVERFLOW]),
                   *buffer_checks,
                   (ErrorCode.ADDRESS_OVERFLOW, checks_5[ErrorCode.ADDRESS_OVERFLOW]),
                   (ErrorCode.OUTSIDE_WINDOW, checks_5[ErrorCode.OUTSIDE_WINDOW])]
        code = Signal(8)
        for error, condition in reversed(ordered):
            with m.If(condition):
                m.d.comb += code.eq(error)
        m.d.sync += self.code.eq(code)
        return m
