"""Compute core: the on-chip buffers, line buffer, DPE array and output path, wired."""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from hw.config import CHANNEL_BLOCK, AccelConfig
from hw.skid_buffer import SkidBuffer
from hw.datapath.dpe_array import DPEArray
from hw.datapath.line_buffer import LineBuffer, word_bytes_for
from hw.datapath.output_buffer import OutputBuffer, output_params_layout
from hw.datapath.pointwise_reader import PointwiseReader
from hw.datapath.repacker import Repacker, byte_stream_layout
from hw.datapath.residual_add import ResidualAdd, add_params_layout
from hw.datapath.stationary_buffer import StationaryBuffer
from hw.datapath.streaming_buffer import StreamingBuffer
from hw.contract import PARAM_BYTES, KernelParams

__all__ = ["ComputeCore", "OUT_ROW_MAX"]

OUT_ROW_MAX = (1 << 32) - 1     # a write command's length




class ComputeCore(wiring.Component):
    """Everything between the DMA and the DMA, driven by command streams.

    Data in (bus-wide byte streams, as :class:`AxiReader` delivers them):
    ``iact_in`` (iAct tile rows, cut into row-aligned words by ``iact_rows`` commands
    ``{rows, row_bytes}``) -> :class:`StreamingBuffer`; ``weight_in`` (unit-major weights,
    cut by ``weight_rows`` commands into rows of ``T_K * 9`` bytes per unit, a 3x3 channel
    or a 1x1 channel block, and those into ``KP * 9``-byte words) -> :class:`StationaryBuffer`; ``params_in`` (``PARAM_BYTES`` per kernel) -> the
    :class:`OutputBuffer`'s parameters; ``table`` -> the requantizers' activation table.

    Compute: :class:`StreamingBuffer` ``read`` -> :class:`LineBuffer` (3x3 kernels) or,
    while ``pointwise`` is set (1x1 kernels), :class:`PointwiseReader` -> :class:`DPEArray`
    (weights from :class:`StationaryBuffer`, swapped on each channel image's first window)
    -> :class:`OutputBuffer`. ``pointwise`` must not change while a layer runs. While
    ``depthwise`` is set, the line buffer's lanes carry KP channels at once and row ``k``
    of the array takes lane ``k`` (``AccelConfig.depthwise_lanes``).

    Data out: ``out`` (bus-wide byte stream for :class:`AxiWriter`, one ``last`` per
    ``out_rows`` command row, i.e. per write command), from ``drain_words * YP`` bytes per
    cycle of the output buffer, through :class:`ResidualAdd`: with ``add_params.enable``
    (a fused residual addition), each output byte is added to the byte of ``residual_in``
    at its position (the residual of each write command, beat for beat, queued in a FIFO
    of ``output_buffer_depth`` bytes, one output tile, so the reads behind it never wait
    for the drain).

    Skid buffers (:class:`SkidBuffer`, one cycle each) sit on ``iact_in``, ``weight_in``
    and ``params_in``, between the line buffer or pointwise reader and the array, between
    the stationary buffer and the array, and on the output path (drain, packed words,
    sums): no combinational path crosses them.

    Commands, passed to the blocks unchanged: ``iact_load``, ``iact_replay``
    (StreamingBuffer), ``weight_load``, ``weight_replay`` (StationaryBuffer), ``lb_cmd``
    (LineBuffer), ``pw_cmd`` (PointwiseReader), ``out_cmd`` (OutputBuffer), plus the repackers' ``iact_rows``,
    ``weight_rows``, ``params_rows`` and ``out_rows``.
    """

    def __init__(self, cfg=AccelConfig()):
        self.cfg = cfg
        bus = cfg.axi_data_width // 8
        self.bus_bytes = bus
        self.word_bytes = word_bytes_for(cfg.yp)
        self.streaming = StreamingBuffer(word_bytes=self.word_bytes, depth=cfg.streaming_buffer_words,
                                         max_rows=cfg.max_tile_rows)
        self.stationary = StationaryBuffer(kp=cfg.kp, depth=max(1, cfg.stationary_buffer_depth // cfg.kp))
        # Command fields hold every value the descriptor validation admits: tile rows up
        # to max_tile_rows, T_C * ceil(T_K / KP) channel images <= stationary depth / KP.
        self.line_buffer = LineBuffer(yp=cfg.yp, max_row=cfg.line_buffer_depth,
                                      max_rows=cfg.max_tile_rows,
                                      max_channels=cfg.max_channel_images,
                                      slots=cfg.line_buffer_slots, lanes=cfg.depthwise_lanes)
        self.pointwise_reader = PointwiseReader(yp=cfg.yp, max_words=cfg.streaming_buffer_words,
                                                max_rows=cfg.max_tile_rows,
                                                max_groups=cfg.max_output_dim,
                                                max_channels=cfg.max_channel_images)
        self.array = DPEArray(kp=cfg.kp, yp=cfg.yp, tag_width=1, lanes=cfg.depthwise_lanes,
                              dsp_packing=cfg.dsp_packing)
        # Output tile dimensions up to AccelConfig.max_output_dim.
        out_words = cfg.output_buffer_depth // (cfg.kp * cfg.yp)
        self.output = OutputBuffer(kp=cfg.kp, yp=cfg.yp, depth=max(1, out_words),
                                   max_dim=cfg.max_output_dim, drain_words=cfg.drain_words)
        # rows: up to a line-buffer row (3x3) or a channel's tile (1x1, flattened)
        self.iact_packer = Repacker(in_bytes=bus, out_bytes=self.word_bytes,
                                    max_row=max(cfg.line_buffer_depth,
                                                cfg.streaming_buffer_words * self.word_bytes))
        # one unit (3x3 channel, 1x1 channel block, depthwise tile) of T_K kernels
        self.weight_packer = Repacker(in_bytes=bus, out_bytes=CHANNEL_BLOCK * cfg.kp,
                                      max_row=CHANNEL_BLOCK * cfg.stationary_buffer_depth)
        self.params_packer = Repacker(in_bytes=bus, out_bytes=PARAM_BYTES, max_row=PARAM_BYTES)
        self.out_packer = Repacker(in_bytes=cfg.drain_words * cfg.yp, out_bytes=bus, max_row=OUT_ROW_MAX)
        self.residual_add = ResidualAdd(lanes=bus)
        bus_layout = byte_stream_layout(bus)
        super().__init__({
            "iact_in": In(stream.Signature(bus_layout)),
            "weight_in": In(stream.Signature(bus_layout)),
            "params_in": In(stream.Signature(bus_layout)),
            "residual_in": In(stream.Signature(bus_layout)),
            "add_params": In(add_params_layout()),
            "table": In(stream.Signature(self.output.table_layout)),
            "out": Out(stream.Signature(bus_layout)),
            "iact_rows": In(stream.Signature(self.iact_packer.cmd_layout)),
            "weight_rows": In(stream.Signature(self.weight_packer.cmd_layout)),
            "params_rows": In(stream.Signature(self.params_packer.cmd_layout)),
            "out_rows": In(stream.Signature(self.out_packer.cmd_layout)),
            "iact_load": In(stream.Signature(self.streaming.load_layout)),
            "iact_replay": In(stream.Signature(self.streaming.replay_layout)),
            "weight_load": In(stream.Signature(self.stationary.load_layout)),
            "weight_replay": In(stream.Signature(self.stationary.replay_layout)),
            "lb_cmd": In(stream.Signature(self.line_buffer.command_layout)),
            "pw_cmd": In(stream.Signature(self.pointwise_reader.command_layout)),
            "pointwise": In(1),
            "depthwise": In(1),
            "out_cmd": In(stream.Signature(self.output.cmd_layout)),
            "array_busy": Out(1),
            "stall_input": Out(1),
            "stall_weights": Out(1),
            "stall_output": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        for name in ("streaming", "stationary", "line_buffer", "pointwise_reader", "array", "output",
                     "iact_packer", "weight_packer", "params_packer", "out_packer"):
            m.submodules[name] = getattr(self, name)

        # commands
        connect(m, flipped(self.iact_load), self.streaming.load)
        connect(m, flipped(self.iact_replay), self.streaming.replay)
        connect(m, flipped(self.weight_load), self.stationary.load)
        connect(m, flipped(self.weight_replay), self.stationary.replay)
        connect(m, flipped(self.lb_cmd), self.line_buffer.cmd)
        connect(m, flipped(self.pw_cmd), self.pointwise_reader.cmd)
        connect(m, flipped(self.out_cmd), self.output.cmd)
        connect(m, flipped(self.iact_rows), self.iact_packer.cmd)
        connect(m, flipped(self.weight_rows), self.weight_packer.cmd)
        connect(m, flipped(self.params_rows), self.params_packer.cmd)
        connect(m, flipped(self.out_rows), self.out_packer.cmd)
        connect(m, flipped(self.table), self.output.table)

        # DRAM data in, through skid buffers: the controller's routing of the read data and
        # the repackers' input handshakes are in different cycles
        in_skids = {}
        for name in ("iact_in", "weight_in", "params_in"):
            m.submodules[f"{name}_skid"] = skid = SkidBuffer(self.iact_in.payload.shape())
            connect(m, flipped(getattr(self, name)), skid.i)
            in_skids[name] = skid.o
        connect(m, in_skids["iact_in"], self.iact_packer.i)
        m.d.comb += [
            self.streaming.write.valid.eq(self.iact_packer.o.valid),
            self.streaming.write.payload.eq(self.iact_packer.o.payload.data),
            self.iact_packer.o.ready.eq(self.streaming.write.ready),
        ]
        connect(m, in_skids["weight_in"], self.weight_packer.i)
        connect(m, self.weight_packer.o, self.stationary.write)
        connect(m, in_skids["params_in"], self.params_packer.i)
        record = data.View(KernelParams, self.params_packer.o.payload.data.as_value())
        params = Signal(output_params_layout)
        m.d.comb += [
            *(getattr(params, name).eq(getattr(record, name)) for name, _ in output_params_layout),
            self.output.params.valid.eq(self.params_packer.o.valid),
            self.output.params.payload.eq(params),
            self.params_packer.o.ready.eq(self.output.params.ready),
        ]

        # compute: rows -> windows (line buffer, or pointwise reader) -> array -> output buffer
        read, pw = self.streaming.read, self.pointwise_reader
        m.d.comb += [
            self.line_buffer.rows.valid.eq(read.valid & ~self.pointwise),
            self.line_buffer.rows.payload.eq(read.payload.as_value()[:self.line_buffer.rows_layout.size]),
            pw.rows.valid.eq(read.valid & self.pointwise),
            pw.rows.payload.eq(read.payload),
            read.ready.eq(Mux(self.pointwise, pw.rows.ready, self.line_buffer.rows.ready)),
        ]
        # the weights through a skid buffer: the array's stall stops at it
        m.submodules.weights_skid = weights_skid = SkidBuffer(self.stationary.weights.payload.shape())
        connect(m, self.stationary.weights, weights_skid.i)
        connect(m, weights_skid.o, self.array.weights)
        lb = stream.Signature(self.line_buffer.windows_layout).create()
        with m.If(self.pointwise):       # the reader's windows go to lane 0
            m.d.comb += [lb.valid.eq(pw.windows.valid), lb.payload.windows[0].eq(pw.windows.payload.windows),
                         lb.payload.first.eq(pw.windows.payload.first),
                         lb.payload.last.eq(pw.windows.payload.last), pw.windows.ready.eq(lb.ready)]
        with m.Else():
            source = self.line_buffer.windows
            m.d.comb += [lb.valid.eq(source.valid), lb.payload.eq(source.payload),
                         source.ready.eq(lb.ready)]
        m.d.comb += self.array.depthwise.eq(self.depthwise)
        # the windows through a skid buffer: the array's stall stops at it
        m.submodules.windows_skid = windows_skid = SkidBuffer(self.line_buffer.windows_layout)
        connect(m, lb, windows_skid.i)
        lb = windows_skid.o
        arr = self.array.windows
        m.d.comb += [
            arr.valid.eq(lb.valid),
            arr.payload.windows.eq(lb.payload.windows),
            arr.payload.swap.eq(lb.payload.first),
            arr.payload.tag.eq(lb.payload.last),
            lb.ready.eq(arr.ready),
            self.output.sums.valid.eq(self.array.sums.valid),
            self.output.sums.payload.sums.eq(self.array.sums.payload.sums),
            self.array.sums.ready.eq(self.output.sums.ready),
            self.array_busy.eq(arr.valid & arr.ready),
            self.stall_output.eq(self.array.sums.valid & ~self.output.sums.ready),
            self.stall_weights.eq(lb.valid & ~arr.ready & ~self.stall_output),
            self.stall_input.eq(~lb.valid & ~self.stall_output),
        ]

        # output: YP-byte beats -> bus words, one write command per out_rows row -> the
        # fused residual addition, its residual bytes queued
        # skid buffers cut the ready paths: the drain's, the packed words', the output's
        m.submodules.drain_skid = drain_skid = SkidBuffer(self.output.out_layout)
        connect(m, self.output.out, drain_skid.i)
        connect(m, drain_skid.o, self.out_packer.i)
        m.submodules.residual_queue = queue = fifo.SyncFIFOBuffered(
            width=len(self.residual_in.payload.as_value()),
            depth=max(2, self.cfg.output_buffer_depth // self.bus_bytes))
        m.submodules.residual_add = add = self.residual_add
        m.d.comb += [
            queue.w_data.eq(self.residual_in.payload.as_value()), queue.w_en.eq(self.residual_in.valid),
            self.residual_in.ready.eq(queue.w_rdy),
            add.residual.valid.eq(queue.r_rdy), add.residual.payload.eq(queue.r_data),
            queue.r_en.eq(add.residual.ready),
            add.params.eq(self.add_params),
        ]
        m.submodules.packed_skid = packed_skid = SkidBuffer(byte_stream_layout(self.bus_bytes))
        connect(m, self.out_packer.o, packed_skid.i)
        connect(m, packed_skid.o, add.i)
        m.submodules.out_skid = out_skid = SkidBuffer(byte_stream_layout(self.bus_bytes))
        connect(m, add.o, out_skid.i)
        connect(m, out_skid.o, flipped(self.out))
        return m
