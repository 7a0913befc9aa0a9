"""AXI4 DMA engines: :class:`AxiReader` (DRAM -> stream) and :class:`AxiWriter` (stream -> DRAM).

Both take byte-addressed commands ``{addr, length}`` (``length`` >= 1 bytes, any alignment)
and exchange *packed* data beats ``{data, count, last}`` with the fabric: byte ``i`` of a beat
sits in bits ``8i .. 8i+7`` (little-endian, byte 0 = lowest address); every beat of a command
but the last carries a full word (``count = data_width / 8``); the last carries
``count`` in 1..data_width/8 valid bytes (bytes ``0 .. count-1``).

AXI side: INCR bursts of full-width beats, at most 256 beats, never across a 4 KiB boundary,
AR/AW registered (valid held until ready), one ID (0), in-order responses.

Errors: a response with ``rresp`` / ``bresp`` != OKAY latches the sticky ``error`` output
(the response code, 2 = SLVERR, 3 = DECERR). The engine then issues no new AR / AW; what is in
flight is drained (R beats and B responses are accepted; W beats owed for already-issued AWs
are sent with ``wstrb = 0``, so nothing more is written), new commands and write data are
accepted and discarded so that producers never hang. A one-cycle ``clear`` pulse requests a
soft reset: it takes effect as soon as no AXI transaction is in flight and returns the engine
to idle with ``error = 0`` (``clear`` also aborts a healthy engine the same way).
"""

from amaranth import Cat, ClockDomain, ClockSignal, Const, DomainRenamer, Module, Mux, ResetSignal, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .axi import AXI4Signature, AXI_BURST_INCR
from .config import check_power_of_two, check_range

__all__ = ["AxiReader", "AxiWriter", "AxiDma", "cmd_layout", "beat_layout", "MAX_BURST_BEATS"]

MAX_BURST_BEATS = 256
LENGTH_WIDTH = 32


def cmd_layout(addr_width):
    """DMA command: byte address and byte length (>= 1)."""
    return data.StructLayout({"addr": addr_width, "length": LENGTH_WIDTH})


def beat_layout(data_width):
    """Packed data beat: ``count`` valid bytes (0 .. count-1), ``last`` of the command."""
    return data.StructLayout({"data": data_width, "count": range(data_width // 8 + 1), "last": 1})


def _check_widths(data_width, addr_width, outstanding, name):
    check_power_of_two("data_width", data_width, 32, 1024)
    check_range("addr_width", addr_width, 12, 64)
    check_range(name, outstanding, 1, 64)


class _BurstSplitter:
    """Shared AR/AW issue logic: splits the current command into legal INCR bursts.

    ``load`` (driven by the owner) moves the next burst into the registered address channel.
    """

    def __init__(self, m, dom, cmd, lanes, shift, addr_width):
        self.active = Signal()
        self.cur = Signal(addr_width)                       # word-aligned byte address
        self.words_left = Signal(LENGTH_WIDTH + 1)
        self.blen = Signal(range(MAX_BURST_BEATS + 1))      # beats of the next burst
        self.last_burst = Signal()
        self.load = Signal()
        self.accept = Signal()
        self.words = Signal(LENGTH_WIDTH + 1)               # words of the command on cmd
        self.offset = Signal(shift if shift else 1)
        to_boundary = Signal(range(4096 // lanes + 1))
        m.d.comb += [
            to_boundary.eq((4096 - self.cur[0:12]) >> shift),
            self.blen.eq(MAX_BURST_BEATS),
            self.offset.eq(cmd.payload.addr[0:shift]),
            self.words.eq((cmd.payload.addr[0:shift] + cmd.payload.length + (lanes - 1)) >> shift),
        ]
        with m.If(to_boundary < MAX_BURST_BEATS):
            m.d.comb += self.blen.eq(to_boundary)
        with m.If((self.words_left < MAX_BURST_BEATS) & (self.words_left < to_boundary)):
            m.d.comb += self.blen.eq(self.words_left)
        m.d.comb += self.last_burst.eq(self.words_left == self.blen)
        with m.If(self.load):
            m.d[dom] += [self.cur.eq(self.cur + (self.blen << shift)),
                         self.words_left.eq(self.words_left - self.blen)]
            with m.If(self.last_burst):
                m.d[dom] += self.active.eq(0)
        with m.If(self.accept):
            m.d[dom] += [self.active.eq(1),
                         self.cur.eq(Cat(Const(0, shift), cmd.payload.addr[shift:])),
                         self.words_left.eq(self.words)]


def _core_domain(m, srst):
    """A local clock domain whose reset is the ``sync`` reset or the soft reset."""
    m.domains.core = cd = ClockDomain("core", local=True)
    m.d.comb += [cd.clk.eq(ClockSignal("sync")), cd.rst.eq(ResetSignal("sync") | srst)]
    return "core"


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

    Latency: 3 cycles from a command's first R beat to its first ``data`` beat (word-aligned
    ``addr``, ``data`` ready; 4 when unaligned): :attr:`latency`. ARVALID rises 2 cycles
    after ``cmd`` is accepted (:attr:`ar_latency`).
    """

    LATENCY = 3
    AR_LATENCY = 2

    @property
    def latency(self):
        return self.LATENCY

    @property
    def ar_latency(self):
        return self.AR_LATENCY

    def __init__(self, *, data_width=128, addr_width=40, max_outstanding=8, fifo_depth=512):
        _check_widths(data_width, addr_width, max_outstanding, "max_outstanding")
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
        dom = _core_domain(m, srst)

        err = Signal(2)
        clear_pending = Signal()
        outstanding = Signal(range(self.max_outstanding + 1))
        credit = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)
        m.d.comb += self.error.eq(err)
        with m.If(self.clear):
            m.d[dom] += clear_pending.eq(1)

        # R buffer and queue of commands for the realigner.
        m.submodules.rbuf = rbuf = DomainRenamer(dom)(SyncFIFOBuffered(width=width, depth=self.fifo_depth))
        queue_layout = data.StructLayout({"offset": max(shift, 1), "length": LENGTH_WIDTH})
        m.submodules.cq = cq = DomainRenamer(dom)(
            SyncFIFOBuffered(width=queue_layout.size, depth=self.max_outstanding + 8))

        # AR issue.
        split = _BurstSplitter(m, dom, self.cmd, lanes, shift, self.addr_width)
        arvalid = Signal()
        m.d.comb += [
            axi.arvalid.eq(arvalid), axi.arid.eq(0), axi.arsize.eq(shift),
            axi.arburst.eq(AXI_BURST_INCR), axi.arlock.eq(0), axi.arcache.eq(0b0011),
            axi.arprot.eq(0),
        ]
        r_error = axi.rvalid & axi.rready & (axi.rresp != 0)
        halted = err.any() | clear_pending | r_error
        m.d.comb += split.load.eq(split.active & ~halted & (credit >= split.blen) &
                                  (outstanding < self.max_outstanding) & (~arvalid | axi.arready))
        with m.If(split.load):
            m.d[dom] += [arvalid.eq(1), axi.araddr.eq(split.cur), axi.arlen.eq(split.blen - 1)]
        with m.Elif(axi.arready):
            m.d[dom] += arvalid.eq(0)
        can_take = ~split.active | (split.load & split.last_burst)
        m.d.comb += [
            self.cmd.ready.eq(~clear_pending & (err.any() | (can_take & cq.w_rdy))),
            split.accept.eq(self.cmd.valid & self.cmd.ready & ~err.any()),
            cq.w_en.eq(split.accept),
            cq.w_data.eq(Cat(split.offset, self.cmd.payload.length)),
        ]

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
        m.d.comb += [
            left.eq(Mux(started, out_left, head.length)),
            is_last.eq(left <= lanes),
            count.eq(Mux(is_last, left, lanes)),
            need_next.eq(head.offset + count > lanes),
            shifted.eq(Cat(hold, word) >> Cat(Const(0, 3), head.offset)),
        ]
        out = self.data
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
                m.d[dom] += [started.eq(1), out_left.eq(left - lanes)]

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
                         out.valid),
        ]
        return m


class AxiWriter(wiring.Component):
    """Writes packed stream data to byte ranges of DRAM over AXI4.

    ``cmd``  (In stream, :func:`cmd_layout`): ``{addr, length}``; any byte address, length >= 1.
    ``data`` (In stream, :func:`beat_layout`): ``{data, count, last}`` packed like
      :class:`AxiReader`'s output, ``ceil(length / lanes)`` beats per command. The command's
      ``length`` decides how many bytes are taken; ``count`` and ``last`` are not checked.
    ``done`` (Out stream, 2-bit payload = 0): one beat per command, after all of its B
      responses arrived with OKAY.
    ``m_axi`` (Out, write half of :class:`AXI4Signature`): AW / W / B channels.
    ``error`` (Out, 2 bits), ``clear`` (In), ``busy`` (Out): as :class:`AxiReader`.

    Data are shifted to the address alignment; WSTRB masks the head and tail, so bytes
    outside ``[addr, addr + length)`` are never written. Bursts of at most 256 beats never
    cross 4 KiB; up to ``max_outstanding`` bursts await their B response. One W beat per
    cycle.

    Latency: 1 cycle from a command's first ``data`` beat to WVALID of its first W beat (its
    AW issued before): :attr:`latency`. AWVALID rises 2 cycles after ``cmd`` is accepted
    (:attr:`aw_latency`).
    """

    LATENCY = 1
    AW_LATENCY = 2

    @property
    def latency(self):
        return self.LATENCY

    @property
    def aw_latency(self):
        return self.AW_LATENCY

    def __init__(self, *, data_width=128, addr_width=40, max_outstanding=8):
        _check_widths(data_width, addr_width, max_outstanding, "max_outstanding")
        self.data_width, self.addr_width = data_width, addr_width
        self.max_outstanding = max_outstanding
        self.lanes = data_width // 8
        self.cmd_layout = cmd_layout(addr_width)
        self.beat_layout = beat_layout(data_width)
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "data": In(stream.Signature(self.beat_layout)),
            "done": Out(stream.Signature(2)),
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=data_width, read=False)),
            "error": Out(2),
            "clear": In(1),
            "busy": Out(1),
        })

    @classmethod
    def from_config(cls, config, **kwargs):
        return cls(data_width=config.axi_data_width, addr_width=config.axi_addr_width,
                   max_outstanding=config.max_outstanding_writes, **kwargs)

    def elaborate(self, platform):
        m = Module()
        lanes, width = self.lanes, self.data_width
        shift = (lanes - 1).bit_length()
        axi = self.m_axi
        srst = Signal()
        dom = _core_domain(m, srst)

        err = Signal(2)
        clear_pending = Signal()
        m.d.comb += self.error.eq(err)
        with m.If(self.clear):
            m.d[dom] += clear_pending.eq(1)
        b_error = axi.bvalid & axi.bready & (axi.bresp != 0)
        abort = err.any() | clear_pending | b_error

        queue_layout = data.StructLayout({"offset": max(shift, 1), "length": LENGTH_WIDTH,
                                          "words": LENGTH_WIDTH + 1})
        m.submodules.cq = cq = DomainRenamer(dom)(SyncFIFOBuffered(width=queue_layout.size, depth=8))
        # burst lengths for the W side, and per-burst "last burst of its command" for B
        m.submodules.wq = wq = DomainRenamer(dom)(
            SyncFIFOBuffered(width=9, depth=self.max_outstanding))
        m.submodules.bq = bq = DomainRenamer(dom)(
            SyncFIFOBuffered(width=1, depth=self.max_outstanding))

        # AW issue.
        split = _BurstSplitter(m, dom, self.cmd, lanes, shift, self.addr_width)
        awvalid = Signal()
        m.d.comb += [
            axi.awvalid.eq(awvalid), axi.awid.eq(0), axi.awsize.eq(shift),
            axi.awburst.eq(AXI_BURST_INCR), axi.awlock.eq(0), axi.awcache.eq(0b0011),
            axi.awprot.eq(0),
        ]
        m.d.comb += split.load.eq(split.active & ~abort & wq.w_rdy & bq.w_rdy &
                                  (~awvalid | axi.awready))
        with m.If(split.load):
            m.d[dom] += [awvalid.eq(1), axi.awaddr.eq(split.cur), axi.awlen.eq(split.blen - 1)]
        with m.Elif(axi.awready):
            m.d[dom] += awvalid.eq(0)
        m.d.comb += [
            wq.w_en.eq(split.load), wq.w_data.eq(split.blen),
            bq.w_en.eq(split.load), bq.w_data.eq(split.last_burst),
        ]
        can_take = ~split.active | (split.load & split.last_burst)
        m.d.comb += [
            self.cmd.ready.eq(~clear_pending & (err.any() | (can_take & cq.w_rdy))),
            split.accept.eq(self.cmd.valid & self.cmd.ready & ~err.any()),
            cq.w_en.eq(split.accept),
            cq.w_data.eq(Cat(split.offset, self.cmd.payload.length, split.words)),
        ]

        # W: align the packed input to the address, strobe head and tail.
        head = data.View(queue_layout, cq.r_data)
        blen = wq.r_data
        beat = Signal(9)
        started = Signal()
        in_left = Signal(LENGTH_WIDTH)
        out_left = Signal(LENGTH_WIDTH + 1)
        hold = Signal(width)
        in_now = Signal(LENGTH_WIDTH)
        words_now = Signal(LENGTH_WIDTH + 1)
        need_in = Signal()
        first, last = Signal(), Signal()
        aligned = Signal(2 * width)
        end_lane = Signal(range(lanes + 1))
        strobe = Signal(lanes)
        tail_shift = Signal(range(lanes))
        all_ones = Const((1 << lanes) - 1, lanes)
        word_in = self.data.payload.data
        m.d.comb += [
            in_now.eq(Mux(started, in_left, head.length)),
            words_now.eq(Mux(started, out_left, head.words)),
            need_in.eq(in_now != 0),
            first.eq(~started),
            last.eq(words_now == 1),
            aligned.eq(Cat(Mux(started, hold, 0), word_in) << Cat(Const(0, 3), head.offset)),
            end_lane.eq((head.offset + head.length - 1)[0:shift] + 1),
            tail_shift.eq(lanes - end_lane),
            strobe.eq(Mux(first, all_ones << head.offset, all_ones) &
                      Mux(last, all_ones >> tail_shift, all_ones)),
        ]
        advance = ~axi.wvalid | axi.wready
        with m.If(advance):
            m.d[dom] += axi.wvalid.eq(0)
        w_go = Signal()
        wlast = Signal()
        m.d.comb += wlast.eq(beat == blen - 1)
        with m.If(w_go):
            m.d[dom] += [axi.wvalid.eq(1), axi.wlast.eq(wlast),
                         beat.eq(Mux(wlast, 0, beat + 1))]
            m.d.comb += wq.r_en.eq(wlast)
        with m.If(abort):
            # owe W beats for issued bursts: send them with no byte enabled
            m.d.comb += [w_go.eq(advance & wq.r_rdy), self.data.ready.eq(1)]
            with m.If(w_go):
                m.d[dom] += [axi.wdata.eq(0), axi.wstrb.eq(0)]
        with m.Else():
            m.d.comb += w_go.eq(advance & wq.r_rdy & cq.r_rdy & (~need_in | self.data.valid))
            with m.If(w_go):
                m.d[dom] += [axi.wdata.eq(aligned[width:]), axi.wstrb.eq(strobe)]
                with m.If(need_in):
                    m.d.comb += self.data.ready.eq(1)
                    m.d[dom] += [hold.eq(word_in),
                                 in_left.eq(Mux(in_now > lanes, in_now - lanes, 0))]
                with m.If(last):
                    m.d[dom] += started.eq(0)
                    m.d.comb += cq.r_en.eq(1)
                with m.Else():
                    m.d[dom] += [started.eq(1), out_left.eq(words_now - 1)]

        # B: count responses, report finished commands.
        done = self.done
        b_fire = Signal()
        m.d.comb += [
            axi.bready.eq(bq.r_rdy & (~bq.r_data[0] | ~done.valid | done.ready | err.any() | clear_pending)),
            b_fire.eq(axi.bvalid & axi.bready),
            bq.r_en.eq(b_fire),
            done.payload.eq(0),
        ]
        with m.If(done.ready):
            m.d[dom] += done.valid.eq(0)
        with m.If(b_fire):
            with m.If((axi.bresp != 0) & ~err.any()):
                m.d[dom] += err.eq(axi.bresp)
            with m.Elif(bq.r_data[0] & ~abort):
                m.d[dom] += done.valid.eq(1)

        m.d.comb += [
            srst.eq(clear_pending & (bq.level == 0) & ~awvalid & ~axi.wvalid),
            self.busy.eq(split.active | awvalid | (bq.level != 0) | cq.r_rdy | axi.wvalid |
                         done.valid),
        ]
        return m


class AxiDma(wiring.Component):
    """An :class:`AxiReader` and an :class:`AxiWriter` behind one AXI4 master ``m_axi``.

    Members: ``rd_cmd``, ``rd_data``, ``rd_error``, ``rd_clear``, ``rd_busy`` (the reader's
    ``cmd``, ``data``, ``error``, ``clear``, ``busy``) and ``wr_cmd``, ``wr_data``,
    ``wr_done``, ``wr_error``, ``wr_clear``, ``wr_busy`` (the writer's).
    """

    def __init__(self, *, data_width=128, addr_width=40, max_outstanding_reads=8,
                 max_outstanding_writes=8, read_buffer_depth=512):
        self.reader = AxiReader(data_width=data_width, addr_width=addr_width,
                                max_outstanding=max_outstanding_reads, fifo_depth=read_buffer_depth)
        self.writer = AxiWriter(data_width=data_width, addr_width=addr_width,
                                max_outstanding=max_outstanding_writes)
        self.data_width, self.addr_width = data_width, addr_width
        rs, ws = self.reader.signature.members, self.writer.signature.members
        super().__init__({
            "rd_cmd": rs["cmd"], "rd_data": rs["data"], "rd_error": rs["error"],
            "rd_clear": rs["clear"], "rd_busy": rs["busy"],
            "wr_cmd": ws["cmd"], "wr_data": ws["data"], "wr_done": ws["done"],
            "wr_error": ws["error"], "wr_clear": ws["clear"], "wr_busy": ws["busy"],
            "m_axi": Out(AXI4Signature(addr_width=addr_width, data_width=data_width)),
        })

    @classmethod
    def from_config(cls, config):
        return cls(data_width=config.axi_data_width, addr_width=config.axi_addr_width,
                   max_outstanding_reads=config.max_outstanding_reads,
                   max_outstanding_writes=config.max_outstanding_writes,
                   read_buffer_depth=config.read_buffer_depth)

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader = reader = self.reader
        m.submodules.writer = writer = self.writer
        for engine, prefix in ((reader, "rd_"), (writer, "wr_")):
            for name in ("cmd", "data", "done"):
                if name in engine.signature.members:
                    wiring.connect(m, wiring.flipped(getattr(self, prefix + name)),
                                   getattr(engine, name))
            m.d.comb += [getattr(self, prefix + "error").eq(engine.error),
                         getattr(self, prefix + "busy").eq(engine.busy),
                         engine.clear.eq(getattr(self, prefix + "clear"))]
            for name, member in engine.m_axi.signature.members.items():
                outer, inner = getattr(self.m_axi, name), getattr(engine.m_axi, name)
                if member.flow == Out:
                    m.d.comb += outer.eq(inner)
                else:
                    m.d.comb += inner.eq(outer)
        return m
