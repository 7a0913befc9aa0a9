"""Controller: validates a layer, loads its activation table, runs the Tiler's DMA
commands into the compute core and out to DRAM, and keeps the performance counters."""

from amaranth import Cat, Module, Mux, ResetInserter, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import AccelConfig
from hw.dma import beat_layout, cmd_layout
from hw.datapath.core import OUT_ROW_MAX
from hw.datapath.repacker import row_command_layout
from hw.datapath.requant import table_write_layout
from hw.contract import COUNTERS, TABLE_BYTES, DmaKind, ErrorCode, LayerDescriptor
from hw.control.descriptor_check import DescriptorCheck
from hw.control.tiler import command_layout

__all__ = ["Controller"]


class Controller(wiring.Component):
    """Sequences one layer per ``start`` pulse.

    1. Validates the descriptor (:class:`hw.control.descriptor_check.DescriptorCheck`,
       ``latency`` cycles): kernel, stride, padding, zero sizes, pitches, every buffer
       against the largest tile, the tile's rows against ``max_tile_rows``, addresses
       against the address width, then every byte range the layer reads or writes
       (``hw.contract.layer_extents``) against the DMA window ``[window_base,
       window_base + window_size)``. A bad descriptor ends the layer with its code;
       nothing touches DRAM.
    2. Reads the 256-byte activation table at ``table_addr`` into the requantizers.
    3. Starts the StepWalker (``walker_desc``), whose one walk of the loop nest feeds the
       Tiler and the Sequencer (both read ``active_descriptor`` and ``active_zero_point``,
       held for the layer), and dispatches the Tiler's commands: reads go to ``rd_cmd``
       with their kind queued, so each returning byte stream is routed to ``iact_in``,
       ``weight_in`` or ``params_in``; output writes go to ``wr_cmd`` and, as one row
       each, to ``out_rows``, through queues deep enough that reads of the next tile are
       not held up behind them (``read_route_depth`` reads in flight,
       ``write_queue_depth`` writes queued).
    4. Ends the layer (``done``, ``layer_end`` pulse) when the Tiler's last command is out
       and every write has its B responses.

    A DMA error (``rd_error`` / ``wr_error``) or ``soft_reset`` aborts: both DMA engines
    get ``clear`` and drain what is in flight while ``core_reset`` holds the datapath in
    reset; then the controller is idle again. After a DMA error, ``done`` is set with
    the error code; ``soft_reset`` clears both.

    A layer with a fused residual addition (the descriptor's ``residual``) reads, with each
    output write command, the residual bytes at the same offset from ``residual_addr``
    (kind RESIDUAL, routed to ``residual_in``); the command is taken when both the write
    queues and the read path have room, so the residual reads keep the write order.

    Counters (64-bit, cleared by ``start``): see ``hw.contract.COUNTERS``. The read bytes include the
    table and the residual. Stalls count cycles of a running layer in which the array took no window:
    no window available (input), window waiting for weights, array held by the output.
    """

    # cycles from ``start`` to the ``layer_end`` of a refused layer, or to its table read
    check_cycles = 1 + DescriptorCheck.latency

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        aw, dw = cfg.axi_addr_width, cfg.axi_data_width
        self.beat_layout = beat_layout(dw)
        rows_layout = row_command_layout(OUT_ROW_MAX)
        super().__init__({
            # registers
            "descriptor": In(LayerDescriptor), "table_addr": In(64), "zero_point": In(8),
            "window_base": In(64), "window_size": In(64),
            "start": In(1), "soft_reset": In(1),
            "busy": Out(1), "done": Out(1), "error_code": Out(8), "layer_end": Out(1),
            **{name: Out(64) for name in COUNTERS},
            # step walker, Tiler and Sequencer
            "active_descriptor": Out(LayerDescriptor), "active_zero_point": Out(8),
            "walker_desc": Out(stream.Signature(LayerDescriptor)),
            "tiler_cmd": In(stream.Signature(command_layout(aw))),
            # DMA
            "rd_cmd": Out(stream.Signature(cmd_layout(aw))),
            "rd_data": In(stream.Signature(self.beat_layout)),
            "rd_error": In(2), "rd_clear": Out(1), "rd_busy": In(1),
            "wr_cmd": Out(stream.Signature(cmd_layout(aw))),
            "wr_done": In(stream.Signature(2)),
            "wr_error": In(2), "wr_clear": Out(1), "wr_busy": In(1),
            "write_beat": In(1), "write_bytes": In(range(dw // 8 + 1)),
            # compute core
            "iact_in": Out(stream.Signature(self.beat_layout)),
            "weight_in": Out(stream.Signature(self.beat_layout)),
            "params_in": Out(stream.Signature(self.beat_layout)),
            "residual_in": Out(stream.Signature(self.beat_layout)),
            "table": Out(stream.Signature(table_write_layout)),
            "out_rows": Out(stream.Signature(rows_layout)),
            "array_busy": In(1), "stall_input": In(1), "stall_weights": In(1), "stall_output": In(1),
            "core_reset": Out(1),
        })

    def elaborate(self, m_platform):
        m = Module()
        cfg = self.cfg
        bus_bytes = cfg.axi_data_width // 8

        desc = Signal(LayerDescriptor)
        zero_point = Signal(8)
        table_addr = Signal(64)
        window_base, window_size = Signal(64), Signal(64)
        m.d.comb += [self.active_descriptor.eq(desc), self.active_zero_point.eq(zero_point)]
        error_code = Signal(8)
        done = Signal()
        m.d.comb += [self.error_code.eq(error_code), self.done.eq(done)]
        m.submodules.check = check = DescriptorCheck(self.cfg)
        m.d.comb += [check.descriptor.eq(desc), check.table_addr.eq(table_addr),
                     check.window_base.eq(window_base), check.window_size.eq(window_size)]
        check_wait = Signal(range(check.latency + 1))    # the check's inputs are held from start

        # queues: kinds of reads in flight; output writes for the writer and the packer
        route = fifo.SyncFIFOBuffered(width=DmaKind.as_shape().width, depth=cfg.read_route_depth)
        wr_queue = fifo.SyncFIFOBuffered(width=cmd_layout(cfg.axi_addr_width).size,
                                         depth=cfg.write_queue_depth)
        rows_queue = fifo.SyncFIFOBuffered(width=32, depth=cfg.write_queue_depth)
        for name, queue in (("route", route), ("wr_queue", wr_queue), ("rows_queue", rows_queue)):
            m.submodules[name] = ResetInserter(self.core_reset)(queue)
        m.d.comb += [
            self.wr_cmd.valid.eq(wr_queue.r_rdy), self.wr_cmd.payload.eq(wr_queue.r_data),
            wr_queue.r_en.eq(self.wr_cmd.ready),
            self.out_rows.valid.eq(rows_queue.r_rdy), self.out_rows.payload.rows.eq(1),
            self.out_rows.payload.row_bytes.eq(rows_queue.r_data), rows_queue.r_en.eq(self.out_rows.ready),
            self.wr_done.ready.eq(1),
        ]

        writes_issued = Signal(32)
        writes_done = Signal(32)
        seen_end = Signal()
        running = Signal()
        with m.If(self.wr_done.valid):
            m.d.sync += writes_done.eq(writes_done + 1)

        # table: reader beats -> one table write per byte
        table_beat = Signal(self.beat_layout)
        table_held = Signal()
        table_lane = Signal(range(bus_bytes))
        table_index = Signal(range(TABLE_BYTES + 1))
        m.d.comb += [
            self.table.valid.eq(table_held),
            self.table.payload.addr.eq(table_index),
            self.table.payload.data.eq(table_beat.data.word_select(table_lane, 8)),
        ]
        with m.If(self.table.valid & self.table.ready):
            m.d.sync += [table_lane.eq(table_lane + 1), table_index.eq(table_index + 1)]
            with m.If(table_lane + 1 == table_beat.count):
                m.d.sync += [table_held.eq(0), table_lane.eq(0)]

        # read data routing
        kind = route.r_data
        targets = {DmaKind.IACT: self.iact_in, DmaKind.WEIGHT: self.weight_in, DmaKind.PARAMS: self.params_in,
                   DmaKind.RESIDUAL: self.residual_in}
        rd = self.rd_data

        def abort_checks(dma_errors=True):
            """Last in a state: DMA errors and soft reset take precedence."""
            if dma_errors:
                with m.If((self.rd_error != 0) | (self.wr_error != 0)):
                    m.d.sync += error_code.eq(Mux(self.rd_error != 0, ErrorCode.DMA_READ_ERROR,
                                                  ErrorCode.DMA_WRITE_ERROR))
                    m.next = "ABORT"
            with m.If(self.soft_reset):
                m.d.sync += [error_code.eq(0), done.eq(0)]
                m.next = "ABORT"

        with m.FSM(init="IDLE") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [desc.eq(self.descriptor), zero_point.eq(self.zero_point),
                                 table_addr.eq(self.table_addr), window_base.eq(self.window_base), window_size.eq(self.window_size),
                                 done.eq(0), error_code.eq(0), writes_issued.eq(0),
                                 writes_done.eq(0), seen_end.eq(0), table_index.eq(0), check_wait.eq(0)]
                    m.d.sync += [getattr(self, name).eq(0) for name in COUNTERS]
                    m.next = "VALIDATE"
                abort_checks(dma_errors=False)
            with m.State("VALIDATE"):
                m.d.sync += check_wait.eq(check_wait + 1)
                with m.If(check_wait == check.latency):
                    with m.If(check.code != 0):
                        m.d.sync += [error_code.eq(check.code), done.eq(1)]
                        m.d.comb += self.layer_end.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "TABLE_CMD"
                abort_checks(dma_errors=False)
            with m.State("TABLE_CMD"):
                m.d.comb += [self.rd_cmd.valid.eq(1), self.rd_cmd.payload.addr.eq(table_addr),
                             self.rd_cmd.payload.length.eq(TABLE_BYTES)]
                with m.If(self.rd_cmd.ready):
                    m.next = "TABLE"
                abort_checks()
            with m.State("TABLE"):
                m.d.comb += rd.ready.eq(~table_held)
                with m.If(rd.valid & rd.ready):
                    m.d.sync += [table_beat.eq(rd.payload), table_held.eq(1)]
                with m.If(table_index == TABLE_BYTES):
                    m.next = "START"
                abort_checks()
            with m.State("START"):
                m.d.comb += [self.walker_desc.valid.eq(1), self.walker_desc.payload.eq(desc)]
                with m.If(self.walker_desc.ready):
                    m.next = "RUN"
                abort_checks()
            with m.State("RUN"):
                m.d.comb += running.eq(1)
                cmd = self.tiler_cmd
                is_write = cmd.payload.kind == DmaKind.OUTPUT
                with m.If(is_write):
                    # with a fused residual, its read goes out with the write
                    read_ok = ~desc.residual | (self.rd_cmd.ready & route.w_rdy)
                    m.d.comb += [
                        wr_queue.w_data.eq(Cat(cmd.payload.addr, cmd.payload.length)),
                        rows_queue.w_data.eq(cmd.payload.length),
                        cmd.ready.eq(wr_queue.w_rdy & rows_queue.w_rdy & read_ok),
                        wr_queue.w_en.eq(cmd.valid & cmd.ready),
                        rows_queue.w_en.eq(cmd.valid & cmd.ready),
                        self.rd_cmd.valid.eq(cmd.valid & desc.residual & wr_queue.w_rdy &
                                             rows_queue.w_rdy & route.w_rdy),
                        self.rd_cmd.payload.addr.eq(cmd.payload.addr - desc.output_addr + desc.residual_addr),
                        self.rd_cmd.payload.length.eq(cmd.payload.length),
                        route.w_data.eq(DmaKind.RESIDUAL),
                        route.w_en.eq(cmd.valid & cmd.ready & desc.residual),
                    ]
                    with m.If(cmd.valid & cmd.ready):
                        m.d.sync += writes_issued.eq(writes_issued + 1)
                with m.Else():
                    m.d.comb += [
                        self.rd_cmd.valid.eq(cmd.valid & route.w_rdy),
                        self.rd_cmd.payload.addr.eq(cmd.payload.addr),
                        self.rd_cmd.payload.length.eq(cmd.payload.length),
                        cmd.ready.eq(self.rd_cmd.ready & route.w_rdy),
                        route.w_data.eq(cmd.payload.kind),
                        route.w_en.eq(cmd.valid & cmd.ready),
                    ]
                with m.If(cmd.valid & cmd.ready & cmd.payload.end):
                    m.d.sync += seen_end.eq(1)
                for code, target in targets.items():
                    selected = route.r_rdy & (kind == code)
                    m.d.comb += [target.valid.eq(rd.valid & selected), target.payload.eq(rd.payload)]
                    with m.If(selected):
                        m.d.comb += rd.ready.eq(target.ready)
                with m.If(rd.valid & rd.ready & rd.payload.last):
                    m.d.comb += route.r_en.eq(1)
                with m.If(seen_end & (writes_done == writes_issued) & (self.wr_cmd.valid == 0)):
                    m.d.sync += done.eq(1)
                    m.d.comb += self.layer_end.eq(1)
                    m.next = "IDLE"
                abort_checks()
            with m.State("ABORT"):
                m.d.comb += [self.rd_clear.eq(1), self.wr_clear.eq(1), self.core_reset.eq(1)]
                m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += self.core_reset.eq(1)
                with m.If(~self.rd_busy & ~self.wr_busy & (self.rd_error == 0) & (self.wr_error == 0)):
                    m.next = "RECOVER"
                abort_checks(dma_errors=False)
            with m.State("RECOVER"):
                m.d.comb += self.core_reset.eq(1)
                m.d.sync += [table_held.eq(0), table_lane.eq(0)]
                with m.If(error_code != 0):
                    m.d.sync += done.eq(1)
                    m.d.comb += self.layer_end.eq(1)
                m.next = "IDLE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))

        # counters
        with m.If(~fsm.ongoing("IDLE")):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(rd.valid & rd.ready):
            m.d.sync += self.dram_read_bytes.eq(self.dram_read_bytes + rd.payload.count)
        with m.If(self.write_beat):
            m.d.sync += self.dram_write_bytes.eq(self.dram_write_bytes + self.write_bytes)
        with m.If(running):
            for name, signal in (("array_busy_cycles", self.array_busy),
                                 ("stall_input_cycles", self.stall_input),
                                 ("stall_weights_cycles", self.stall_weights),
                                 ("stall_output_cycles", self.stall_output)):
                with m.If(signal):
                    m.d.sync += getattr(self, name).eq(getattr(self, name) + 1)
        return m
