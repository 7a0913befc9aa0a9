"""CommandQueue: runs a list of commands from DRAM through the Controller, one at a time,
and writes a trace record per command; a single layer is a one-command queue."""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import AccelConfig
from hw.dma import beat_layout, cmd_layout
from hw.contract import (COMMAND_BYTES, COUNTERS, TRACE_BYTES, CommandOp, CommandRecord, ErrorCode,
                         LayerDescriptor, PoolDescriptor, TraceRecord)

__all__ = ["CommandQueue", "POOL_COUNTERS"]

# the counters of a pooling pass's trace record (the others are 0)
POOL_COUNTERS = ("cycles", "dram_read_bytes", "dram_write_bytes")


class CommandQueue(wiring.Component):
    """Feeds the :class:`hw.control.controller.Controller` its layers.

    ``start`` (a pulse): one layer from the registers (``descriptor``, ``table_addr``,
    ``zero_point``), no DRAM access of its own and no trace; ``descriptor_too_wide`` (a
    register holding bits above its field) refuses it with ``BAD_COMMAND``. ``start_queue``: the
    ``queue_length`` :class:`hw.contract.CommandRecord` s at ``queue_addr``:

    1. checks the length (1 .. ``max_queue_length``, else ``BAD_QUEUE``) and that the list
       ``[queue_addr, + length * COMMAND_BYTES)`` and the trace ``[trace_addr, + length *
       TRACE_BYTES)`` lie in the address space and the DMA window ``[window_base,
       window_base + window_size)`` (else ``QUEUE_OUTSIDE_WINDOW``), before any DRAM access;
    2. per command: reads its record (``rd_cmd`` / ``rd_data``), refuses an unknown ``op``
       or a field wider than the descriptor's (``BAD_COMMAND``), hands it to the controller
       (``layer``, a stream; the controller validates it before any DRAM access of the
       layer) and waits for ``layer_end`` (the controller ends a layer once its last B
       response is in); an op POOL command goes to the pooling engine instead (``pool``,
       a :class:`hw.contract.PoolDescriptor`; it checks the command, then owns the DMA
       until ``pool_done``, with ``pool_code``);
    3. writes the layer's counters as a :class:`hw.contract.TraceRecord` to ``trace_addr +
       index * TRACE_BYTES`` (``wr_cmd`` / ``wr_data``) and waits for its B response, then
       goes on with the next command.

    ``done`` and ``error_code`` (a layer's own code, or the queue's) hold the outcome until
    the next start; ``finished`` pulses once at the end (the interrupt). ``index``: the
    commands completed, or on an error the failing command. ``cycles``: from
    ``start_queue`` to the end. A DMA error in a fetch or a trace write stops the queue
    with ``DMA_READ_ERROR`` / ``DMA_WRITE_ERROR`` after both engines are cleared and
    drained (``rd_clear`` / ``wr_clear``); ``soft_reset`` stops it at any point with no
    error (the controller's abort clears and drains both engines).

    ``layer`` is a stream: the top level takes a command only while the controller is
    idle, and starts it. ``dma_owner`` is high while the queue drives the DMA ports (a
    fetch or a trace write, only between layers); the top level routes the DMA engines by
    it. Per command, the fetch (``COMMAND_BYTES``) and the trace write (``TRACE_BYTES``)
    add about two DRAM latencies to the layer's own cycles.
    """

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        aw, dw = cfg.axi_addr_width, cfg.axi_data_width
        if (COMMAND_BYTES * 8) % dw or (TRACE_BYTES * 8) % dw:
            raise ValueError(f"axi_data_width {dw} must divide the {COMMAND_BYTES}-byte command "
                             f"and {TRACE_BYTES}-byte trace records")
        super().__init__({
            # registers
            "descriptor": In(LayerDescriptor), "descriptor_too_wide": In(1),
            "table_addr": In(64), "zero_point": In(8), "queue_addr": In(64), "queue_length": In(32), "trace_addr": In(64),
            "window_base": In(64), "window_size": In(64),
            "start": In(1), "start_queue": In(1), "soft_reset": In(1),
            "busy": Out(1), "done": Out(1), "error_code": Out(8), "finished": Out(1),
            "index": Out(32), "cycles": Out(64),
            # controller
            "layer": Out(stream.Signature(data.StructLayout({
                "descriptor": LayerDescriptor, "table_addr": 64, "zero_point": 8}))),
            "layer_end": In(1), "layer_error": In(8),
            **{f"layer_{name}": In(64) for name in COUNTERS},
            # pooling engine
            "pool": Out(stream.Signature(PoolDescriptor)),
            "pool_done": In(1), "pool_code": In(8),
            **{f"pool_{name}": In(64) for name in POOL_COUNTERS},
            # DMA
            "dma_owner": Out(1),
            "rd_cmd": Out(stream.Signature(cmd_layout(aw))),
            "rd_data": In(stream.Signature(beat_layout(dw))),
            "rd_error": In(2), "rd_busy": In(1), "rd_clear": Out(1),
            "wr_cmd": Out(stream.Signature(cmd_layout(aw))),
            "wr_data": Out(stream.Signature(beat_layout(dw))),
            "wr_done": In(stream.Signature(2)),
            "wr_error": In(2), "wr_busy": In(1), "wr_clear": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        dw = cfg.axi_data_width
        bus_bytes = dw // 8
        command_beats = COMMAND_BYTES // bus_bytes
        trace_beats = TRACE_BYTES // bus_bytes

        queue_addr, trace_addr = Signal(64), Signal(64)
        length = Signal(32)
        window_base, window_size = Signal(64), Signal(64)
        record = Signal(CommandRecord)
        beats = Signal(range(max(command_beats, trace_beats) + 1))
        trace = Signal(TraceRecord)
        from_registers = Signal()           # a single layer: no fetch, no trace
        done, error_code = Signal(), Signal(8)
        m.d.comb += [self.done.eq(done), self.error_code.eq(error_code)]

        # the command handed to the controller
        desc = self.layer.payload.descriptor
        for name, _ in data.Layout.cast(LayerDescriptor):
            m.d.comb += getattr(desc, name).eq(getattr(record, name))
        m.d.comb += [self.layer.payload.table_addr.eq(record.table_addr),
                     self.layer.payload.zero_point.eq(record.zero_point)]
        too_wide = [getattr(record, name)[fld.shape.width:] != 0
                    for name, fld in data.Layout.cast(LayerDescriptor)
                    if len(getattr(record, name)) > fld.shape.width]
        is_pool = record.op == CommandOp.POOL
        bad_command = Signal()
        m.d.comb += bad_command.eq(Mux(is_pool, record.pool_mode[2:] != 0,
                                       Cat(*too_wide).any() | (record.op != CommandOp.CONV)))
        # an op POOL command: the pooling engine's descriptor, from the fields of its names
        pool = self.pool.payload
        for name, _ in data.Layout.cast(PoolDescriptor):
            if name in ("kernel", "mode"):
                continue
            m.d.comb += getattr(pool, name).eq(getattr(record, name))
        m.d.comb += [pool.kernel.eq(record.kernel_size), pool.mode.eq(record.pool_mode)]
        was_pool = Signal()             # the command that ended ran on the pooling engine

        # the list and trace extents, checked at start_queue (hw.contract: QUEUE_OUTSIDE_WINDOW),
        # their ends registered (PREPARE waits for them)
        top = Const(1 << cfg.axi_addr_width, cfg.axi_addr_width + 1)
        list_end = Signal(72)
        trace_end = Signal(72)
        window_end = Signal(65)
        m.d.sync += [list_end.eq(queue_addr + length * COMMAND_BYTES),
                     trace_end.eq(trace_addr + length * TRACE_BYTES),
                     window_end.eq(window_base + window_size)]
        outside = ((list_end > top) | (trace_end > top) |
                   (queue_addr < window_base) | (list_end > window_end) |
                   (trace_addr < window_base) | (trace_end > window_end))

        index = Signal(32)
        m.d.comb += self.index.eq(index)
        last_index = Signal()           # index is the list's last: registered, as index moves
        m.d.sync += last_index.eq(index + 1 == length)      # only between commands
        fetch_addr = Signal(64)
        trace_write_addr = Signal(64)
        m.d.comb += [fetch_addr.eq(queue_addr + index * COMMAND_BYTES),
                     trace_write_addr.eq(trace_addr + index * TRACE_BYTES)]

        def finish(code):
            m.d.sync += [done.eq(1), error_code.eq(code)]
            m.d.comb += self.finished.eq(1)
            m.next = "IDLE"

        def stops(dma=False):
            """Last in a state: a DMA error of the queue's own transfer (``dma``) and a soft
            reset, which the controller's abort follows with a clear of both engines."""
            if dma:
                with m.If((self.rd_error != 0) | (self.wr_error != 0)):
                    m.d.sync += error_code.eq(Mux(self.rd_error != 0, ErrorCode.DMA_READ_ERROR,
                                                  ErrorCode.DMA_WRITE_ERROR))
                    m.next = "ABORT"
            with m.If(self.soft_reset):
                m.d.sync += [done.eq(0), error_code.eq(0)]
                m.next = "IDLE"

        with m.FSM(init="IDLE") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    for name, _ in data.Layout.cast(LayerDescriptor):
                        m.d.sync += getattr(record, name).eq(getattr(self.descriptor, name))
                    m.d.sync += [record.table_addr.eq(self.table_addr),
                                 record.zero_point.eq(self.zero_point), record.op.eq(CommandOp.CONV),
                                 from_registers.eq(1), done.eq(0), error_code.eq(0), index.eq(0)]
                    with m.If(self.descriptor_too_wide):
                        m.next = "REFUSE"
                    with m.Else():
                        m.next = "LAYER"
                with m.Elif(self.start_queue):
                    m.d.sync += [queue_addr.eq(self.queue_addr), length.eq(self.queue_length),
                                 trace_addr.eq(self.trace_addr), window_base.eq(self.window_base),
                                 window_size.eq(self.window_size), from_registers.eq(0),
                                 done.eq(0), error_code.eq(0), index.eq(0), self.cycles.eq(0)]
                    m.next = "PREPARE"
            with m.State("REFUSE"):
                finish(ErrorCode.BAD_COMMAND)
            with m.State("PREPARE"):        # the extents' ends are registered
                m.next = "CHECK"
                stops()
            with m.State("CHECK"):
                with m.If((length == 0) | (length > cfg.max_queue_length)):
                    finish(ErrorCode.BAD_QUEUE)
                with m.Elif(outside):
                    finish(ErrorCode.QUEUE_OUTSIDE_WINDOW)
                with m.Else():
                    m.next = "FETCH_CMD"
                stops()
            with m.State("FETCH_CMD"):
                m.d.comb += [self.dma_owner.eq(1), self.rd_cmd.valid.eq(1),
                             self.rd_cmd.payload.addr.eq(fetch_addr),
                             self.rd_cmd.payload.length.eq(COMMAND_BYTES)]
                with m.If(self.rd_cmd.ready):
                    m.d.sync += beats.eq(0)
                    m.next = "FETCH"
                stops(dma=True)
            with m.State("FETCH"):
                m.d.comb += [self.dma_owner.eq(1), self.rd_data.ready.eq(1)]
                with m.If(self.rd_data.valid):
                    # beats arrive lowest address first: shift each in at the top
                    m.d.sync += [record.as_value().eq(Cat(record.as_value()[dw:], self.rd_data.payload.data)),
                                 beats.eq(beats + 1)]
                with m.If(beats == command_beats):
                    with m.If(bad_command):
                        finish(ErrorCode.BAD_COMMAND)
                    with m.Elif(is_pool):
                        m.next = "POOL"
                    with m.Else():
                        m.next = "LAYER"
                stops(dma=True)
            with m.State("POOL"):
                m.d.comb += self.pool.valid.eq(1)
                with m.If(self.pool.ready):
                    m.d.sync += was_pool.eq(1)
                    m.next = "POOLING"
                stops()
            with m.State("POOLING"):        # the engine owns the DMA until it is done
                with m.If(self.pool_done):
                    with m.If((self.pool_code == ErrorCode.DMA_READ_ERROR) |
                              (self.pool_code == ErrorCode.DMA_WRITE_ERROR)):
                        m.d.sync += error_code.eq(self.pool_code)
                        m.next = "ABORT"        # clear and drain the DMA engines
                    with m.Elif(self.pool_code != 0):
                        finish(self.pool_code)
                    with m.Else():
                        m.d.sync += [trace.index.eq(index), trace.error_code.eq(0), beats.eq(0)]
                        m.next = "TRACE_CMD"
                stops()
            with m.State("LAYER"):
                m.d.comb += self.layer.valid.eq(1)
                with m.If(self.layer.ready):
                    m.d.sync += was_pool.eq(0)
                    m.next = "RUN"
                stops()
            with m.State("RUN"):
                with m.If(self.layer_end):
                    m.next = "ENDED"
                stops()
            with m.State("ENDED"):          # the controller's error code and counters are final
                with m.If(self.layer_error != 0):
                    finish(self.layer_error)
                with m.Elif(from_registers):
                    finish(ErrorCode.NONE)
                with m.Else():
                    m.d.sync += [trace.index.eq(index), trace.error_code.eq(0), beats.eq(0)]
                    m.next = "TRACE_CMD"
                stops()
            with m.State("TRACE_CMD"):
                # the counters hold their values until the engine's next start
                for name in COUNTERS:
                    value = getattr(self, f"layer_{name}")
                    if name in POOL_COUNTERS:
                        value = Mux(was_pool, getattr(self, f"pool_{name}"), value)
                    else:
                        value = Mux(was_pool, 0, value)
                    m.d.sync += getattr(trace, name).eq(value)
                m.d.comb += [self.dma_owner.eq(1), self.wr_cmd.valid.eq(1),
                             self.wr_cmd.payload.addr.eq(trace_write_addr),
                             self.wr_cmd.payload.length.eq(TRACE_BYTES)]
                with m.If(self.wr_cmd.ready):
                    m.next = "TRACE_DATA"
                stops(dma=True)
            with m.State("TRACE_DATA"):
                m.d.comb += [self.dma_owner.eq(1), self.wr_data.valid.eq(1),
                             self.wr_data.payload.data.eq(trace.as_value()[:dw]),
                             self.wr_data.payload.count.eq(bus_bytes),
                             self.wr_data.payload.last.eq(beats == trace_beats - 1)]
                with m.If(self.wr_data.ready):
                    m.d.sync += [trace.as_value().eq(trace.as_value() >> dw), beats.eq(beats + 1)]
                    with m.If(beats == trace_beats - 1):
                        m.next = "TRACE_DONE"
                stops(dma=True)
            with m.State("TRACE_DONE"):
                m.d.comb += [self.dma_owner.eq(1), self.wr_done.ready.eq(1)]
                with m.If(self.wr_done.valid):
                    m.d.sync += index.eq(index + 1)
                    with m.If(last_index):
                        finish(ErrorCode.NONE)
                    with m.Else():
                        m.next = "FETCH_CMD"
                stops(dma=True)
            with m.State("ABORT"):
                m.d.comb += [self.dma_owner.eq(1), self.rd_clear.eq(1), self.wr_clear.eq(1)]
                m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += [self.dma_owner.eq(1), self.rd_data.ready.eq(1), self.wr_done.ready.eq(1)]
                with m.If(~self.rd_busy & ~self.wr_busy & (self.rd_error == 0) & (self.wr_error == 0)):
                    finish(error_code)
                stops()
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        with m.If(~fsm.ongoing("IDLE") & ~from_registers):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        return m
