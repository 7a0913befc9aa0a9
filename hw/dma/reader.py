"""AXI4 burst reader: DRAM -> packed, realigned byte stream (see :mod:`hw.dma`)."""

from amaranth import Cat, Const, DomainRenamer, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.config import check_power_of_two
from hw.skid_buffer import SkidBuffer
from hw.dma.axi import AXI4Signature, AXI_BURST_INCR
from hw.dma.bursts import (LENGTH_WIDTH, MAX_BURST_BEATS, BurstSplitter, beat_layout, check_widths,
                           cmd_layout, core_domain)

__all__ = ["AxiReader"]


class AxiReader(wiring.Component):
    """Reads byte ranges of DRAM over AXI4 and streams them out packed and realigned.

    ``cmd``  (In stream, :func:`cmd_layout`): ``{addr, length}``; any byte address, length >= 1.
    ``data`` (Out stream, :func:`beat_layout`): ``{data, count, last}``; byte 0 of the first
      beat is the byte at ``addr``; all beats but the last are full words.
    ``m_axi`` (Out, read half of :class:`AXI4Signature`): AR / R channels.
    ``error`` (Out, 2 bits): sticky response code of the first failed R beat, 0 when healthy.
    ``clear`` (In): soft-reset request (see the module docstring). ``busy`` (Out): a command
      is being issued, a burst is in flight or data is buffered.

    Commands are split into INCR bursts of at most 256 beats that never cross 4 KiB; up to
    ``max_outstanding`` bursts are in flight. AR is only issued when the ``fifo_depth``-word
    R buffer has room reserved for the whole burst, so ``rready`` stays high. Throughput is one
    beat per cycle once the data flows; each command whose address is not word-aligned costs
    one extra cycle.

    ``cmd`` and ``data`` each pass a :class:`hw.skid_buffer.SkidBuffer`, so no
    combinational path runs between the engine and its clients.

    Latency: 4 cycles from a command's first R beat to its first ``data`` beat (word-aligned
    ``addr``, ``data`` ready; 5 when unaligned): :attr:`latency`. ARVALID rises 3 cycles
    after ``cmd`` is accepted (:attr:`ar_latency`).
    """

    LATENCY = 4
    AR_LATENCY = 3

    @property
    def latency(self):
        return self.LATENCY

    @property
    def ar_latency(self):
        return self.AR_LATENCY

    def __init__(self, *, data_width=128, addr_width=40, max_outstanding=8, fifo_depth=512):
        check_widths(data_width, addr_width, max_outstanding, "max_outstanding")
        check_power_of_two("fifo_depth", fifo_depth, 2 * MAX_BURST_BEATS, 1 << 16)
        self.data_width, self.addr_width = data_width, addr_width
        self.max_outstanding, self.fifo_depth = max_outstanding, fifo_depth
        self.lanes = data_width // 8
        self.cmd_layout = cmd_layout(addr_width)
        self.beat_layout = beat_layout(data_width)
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "data": Out(stream.Signature(self.beat_layout)),
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=data_width, write=False)),
            "error": Out(2),
            "clear": In(1),
            "busy": Out(1),
        })

    @classmethod
    def from_config(cls, config, **kwargs):
        return cls(data_width=config.axi_data_width, addr_width=config.axi_addr_width,
                   max_outstanding=config.max_outstanding_reads,
                   fifo_depth=config.read_buffer_depth, **kwargs)

    def elaborate(self, platform):
        m = Module()
        lanes, width = self.lanes, self.data_width
        shift = (lanes - 1).bit_length()
        axi = self.m_axi
        srst = Signal()
        dom = core_domain(m, srst)

        err = Signal(2)
        clear_pending = Signal()
        outstanding = Signal(range(self.max_outstanding + 1))
        credit = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)
        m.d.comb += self.error.eq(err)
        with m.If(self.clear):
            m.d[dom] += clear_pending.eq(1)

        # R buffer and queue of commands for the realigner.
        m.submodules.rbuf = rbuf = DomainRenamer(dom)(SyncFIFOBuffered(width=width, depth=self.fifo_depth))
        # each command for the realigner, with its first beat's decisions made on the way in
        queue_layout = data.StructLayout({"offset": max(shift, 1), "length": LENGTH_WIDTH,
                                          "first_last": 1, "first_count": range(lanes + 1),
                                          "first_need_next": 1})
        m.submodules.cq = cq = DomainRenamer(dom)(
            SyncFIFOBuffered(width=queue_layout.size, depth=self.max_outstanding + 8))

        # commands through a skid buffer (none taken while a clear is pending)
        m.submodules.cmd_buffer = cmd_buffer = DomainRenamer(dom)(SkidBuffer(self.cmd_layout))
        m.d.comb += [cmd_buffer.i.valid.eq(self.cmd.valid & ~clear_pending),
                     cmd_buffer.i.payload.eq(self.cmd.payload),
                     self.cmd.ready.eq(cmd_buffer.i.ready & ~clear_pending)]
        cmd = cmd_buffer.o

        # AR issue.
        split = BurstSplitter(m, dom, cmd, lanes, shift, self.addr_width)
        arvalid = Signal()
        m.d.comb += [
            axi.arvalid.eq(arvalid), axi.arid.eq(0), axi.arsize.eq(shift),
            axi.arburst.eq(AXI_BURST_INCR), axi.arlock.eq(0), axi.arcache.eq(0b0011),
            axi.arprot.eq(0),
        ]
        # an error response on R stops AR issue in its own cycle, whether or not it is taken
        # then (``rready`` is not in the term: it stays off the AR issue path)
        halted = err.any() | clear_pending | (axi.rvalid & (axi.rresp != 0))
        m.d.comb += split.load.eq(split.active & ~halted & (credit >= split.blen) &
                                  (outstanding < self.max_outstanding) & (~arvalid | axi.arready))
        with m.If(split.load):
            m.d[dom] += [arvalid.eq(1), axi.araddr.eq(split.cur), axi.arlen.eq(split.blen - 1)]
        with m.Elif(axi.arready):
            m.d[dom] += arvalid.eq(0)
        can_take = ~split.active | (split.load & split.last_burst)
        m.d.comb += [
            cmd.ready.eq(~clear_pending & (err.any() | (can_take & cq.w_rdy))),
            split.accept.eq(cmd.valid & cmd.ready & ~err.any()),
            cq.w_en.eq(split.accept),
        ]
        entry = data.View(queue_layout, cq.w_data)
        length = cmd.payload.length
        first_count = Mux(length <= lanes, length, lanes)
        m.d.comb += [entry.offset.eq(split.offset), entry.length.eq(length),
                     entry.first_last.eq(length <= lanes), entry.first_count.eq(first_count),
                     entry.first_need_next.eq(split.offset + first_count > lanes)]

        # R channel.
        r_fire = Signal()
        m.d.comb += [
            axi.rready.eq(rbuf.w_rdy | err.any()),
            r_fire.eq(axi.rvalid & axi.rready),
            rbuf.w_data.eq(axi.rdata),
            rbuf.w_en.eq(r_fire & ~err.any() & (axi.rresp == 0)),
        ]
        with m.If(r_fire & (axi.rresp != 0) & ~err.any()):
            m.d[dom] += err.eq(axi.rresp)
        m.d[dom] += outstanding.eq(outstanding + split.load - (r_fire & axi.rlast))
        pop = Signal()
        m.d[dom] += credit.eq(credit - Mux(split.load, split.blen, 0) + pop)
        m.d.comb += pop.eq(rbuf.r_en & rbuf.r_rdy)

        # Realigner: output beat i = transfer bytes [i*lanes, (i+1)*lanes).
        head = data.View(queue_layout, cq.r_data)
        started = Signal()
        out_left = Signal(LENGTH_WIDTH)
        hold = Signal(width)
        hold_valid = Signal()
        left = Signal(LENGTH_WIDTH)
        count = Signal(range(lanes + 1))
        is_last = Signal()
        need_next = Signal()
        shifted = Signal(width)
        word = rbuf.r_data
        # the beat's decisions: from the queue on a command's first beat, else from registers
        # loaded as the previous beat left
        later_last, later_count, later_need_next = Signal(), Signal(range(lanes + 1)), Signal()
        m.d.comb += [
            left.eq(Mux(started, out_left, head.length)),
            is_last.eq(Mux(started, later_last, head.first_last)),
            count.eq(Mux(started, later_count, head.first_count)),
            need_next.eq(Mux(started, later_need_next, head.first_need_next)),
            shifted.eq(Cat(hold, word) >> Cat(Const(0, 3), head.offset)),
        ]
        m.submodules.data_buffer = data_buffer = DomainRenamer(dom)(SkidBuffer(self.beat_layout))
        wiring.connect(m, data_buffer.o, wiring.flipped(self.data))
        out = data_buffer.i
        advance = ~out.valid | out.ready
        with m.If(advance):
            m.d[dom] += out.valid.eq(0)

        def emit(value):
            m.d[dom] += [out.valid.eq(1), out.payload.data.eq(value),
                         out.payload.count.eq(count), out.payload.last.eq(is_last)]
            with m.If(is_last):
                m.d[dom] += [started.eq(0), hold_valid.eq(0)]
                m.d.comb += cq.r_en.eq(1)
            with m.Else():
                following = Mux(left <= 2 * lanes, left - lanes, lanes)     # the next beat's count
                m.d[dom] += [started.eq(1), out_left.eq(left - lanes),
                             later_last.eq(left <= 2 * lanes), later_count.eq(following),
                             later_need_next.eq(head.offset + following > lanes)]

        with m.If(advance & cq.r_rdy & ~err.any()):
            with m.If(head.offset == 0):
                with m.If(rbuf.r_rdy):
                    m.d.comb += rbuf.r_en.eq(1)
                    emit(word)
            with m.Elif(~hold_valid):
                with m.If(rbuf.r_rdy):
                    m.d.comb += rbuf.r_en.eq(1)
                    m.d[dom] += [hold.eq(word), hold_valid.eq(1)]
            with m.Elif(~need_next | rbuf.r_rdy):
                with m.If(need_next):
                    m.d.comb += rbuf.r_en.eq(1)
                    m.d[dom] += hold.eq(word)
                emit(shifted)

        m.d.comb += [
            srst.eq(clear_pending & (outstanding == 0) & ~arvalid),
            self.busy.eq(split.active | arvalid | (outstanding != 0) | cq.r_rdy | rbuf.r_rdy |
                         out.valid | cmd.valid | self.data.valid),
        ]
        return m
