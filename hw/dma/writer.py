"""AXI4 burst writer: packed byte stream -> DRAM, with WSTRB (see :mod:`hw.dma`)."""

from amaranth import Cat, Const, DomainRenamer, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.dma.axi import AXI4Signature, AXI_BURST_INCR
from hw.skid_buffer import SkidBuffer
from hw.dma.bursts import LENGTH_WIDTH, BurstSplitter, beat_layout, check_widths, cmd_layout, core_domain

__all__ = ["AxiWriter"]


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

    ``cmd`` and ``data`` each pass a :class:`hw.skid_buffer.SkidBuffer`, so no
    combinational path runs between the engine and its clients.

    Latency: 2 cycles from a command's first ``data`` beat to WVALID of its first W beat (its
    AW issued before): :attr:`latency`. AWVALID rises 3 cycles after ``cmd`` is accepted
    (:attr:`aw_latency`).
    """

    LATENCY = 2
    AW_LATENCY = 3

    @property
    def latency(self):
        return self.LATENCY

    @property
    def aw_latency(self):
        return self.AW_LATENCY

    def __init__(self, *, data_width=128, addr_width=40, max_outstanding=8):
        check_widths(data_width, addr_width, max_outstanding, "max_outstanding")
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
        dom = core_domain(m, srst)

        err = Signal(2)
        clear_pending = Signal()
        m.d.comb += self.error.eq(err)
        with m.If(self.clear):
            m.d[dom] += clear_pending.eq(1)
        # an error response on B stops AW issue and W data in its own cycle, whether or not
        # it is taken then (``bready``, which waits on ``done``, stays off these paths)
        abort = err.any() | clear_pending | (axi.bvalid & (axi.bresp != 0))

        # each command for the W side, with its first beat's decision made on the way in
        queue_layout = data.StructLayout({"offset": max(shift, 1), "length": LENGTH_WIDTH,
                                          "words": LENGTH_WIDTH + 1, "first_last": 1, "first_need_in": 1})
        m.submodules.cq = cq = DomainRenamer(dom)(SyncFIFOBuffered(width=queue_layout.size, depth=8))
        # burst lengths (AWLEN) for the W side, and per-burst "last burst of its command" for B
        m.submodules.wq = wq = DomainRenamer(dom)(
            SyncFIFOBuffered(width=9, depth=self.max_outstanding))
        m.submodules.bq = bq = DomainRenamer(dom)(
            SyncFIFOBuffered(width=1, depth=self.max_outstanding))

        # commands and data through skid buffers (no command taken while a clear is pending)
        m.submodules.cmd_buffer = cmd_buffer = DomainRenamer(dom)(SkidBuffer(self.cmd_layout))
        m.d.comb += [cmd_buffer.i.valid.eq(self.cmd.valid & ~clear_pending),
                     cmd_buffer.i.payload.eq(self.cmd.payload),
                     self.cmd.ready.eq(cmd_buffer.i.ready & ~clear_pending)]
        cmd = cmd_buffer.o
        m.submodules.data_buffer = data_buffer = DomainRenamer(dom)(SkidBuffer(self.beat_layout))
        wiring.connect(m, wiring.flipped(self.data), data_buffer.i)
        data_in = data_buffer.o

        # AW issue.
        split = BurstSplitter(m, dom, cmd, lanes, shift, self.addr_width)
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
            wq.w_en.eq(split.load), wq.w_data.eq(split.blen - 1),
            bq.w_en.eq(split.load), bq.w_data.eq(split.last_burst),
        ]
        can_take = ~split.active | (split.load & split.last_burst)
        m.d.comb += [
            cmd.ready.eq(~clear_pending & (err.any() | (can_take & cq.w_rdy))),
            split.accept.eq(cmd.valid & cmd.ready & ~err.any()),
            cq.w_en.eq(split.accept),
        ]
        entry = data.View(queue_layout, cq.w_data)
        m.d.comb += [entry.offset.eq(split.offset), entry.length.eq(cmd.payload.length),
                     entry.words.eq(split.words), entry.first_last.eq(split.words == 1),
                     entry.first_need_in.eq(cmd.payload.length != 0)]

        # W: align the packed input to the address, strobe head and tail.
        head = data.View(queue_layout, cq.r_data)
        last_beat = wq.r_data             # the burst's AWLEN: its last beat's index
        beat = Signal(9)
        started = Signal()
        in_left = Signal(LENGTH_WIDTH)
        out_left = Signal(LENGTH_WIDTH + 1)
        hold = Signal(width)
        in_now = Signal(LENGTH_WIDTH)
        words_now = Signal(LENGTH_WIDTH + 1)
        need_in = Signal()
        later_need_in, later_last = Signal(), Signal()      # the next beat's, as one leaves
        first, last = Signal(), Signal()
        aligned = Signal(2 * width)
        end_lane = Signal(range(lanes + 1))
        strobe = Signal(lanes)
        tail_shift = Signal(range(lanes))
        all_ones = Const((1 << lanes) - 1, lanes)
        word_in = data_in.payload.data
        m.d.comb += [
            in_now.eq(Mux(started, in_left, head.length)),
            words_now.eq(Mux(started, out_left, head.words)),
            need_in.eq(Mux(started, later_need_in, head.first_need_in)),
            first.eq(~started),
            last.eq(Mux(started, later_last, head.first_last)),
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
        m.d.comb += wlast.eq(beat == last_beat)
        with m.If(w_go):
            m.d[dom] += [axi.wvalid.eq(1), axi.wlast.eq(wlast),
                         beat.eq(Mux(wlast, 0, beat + 1))]
            m.d.comb += wq.r_en.eq(wlast)
        with m.If(abort):
            # owe W beats for issued bursts: send them with no byte enabled
            m.d.comb += [w_go.eq(advance & wq.r_rdy), data_in.ready.eq(1)]
            with m.If(w_go):
                m.d[dom] += [axi.wdata.eq(0), axi.wstrb.eq(0)]
        with m.Else():
            m.d.comb += w_go.eq(advance & wq.r_rdy & cq.r_rdy & (~need_in | data_in.valid))
            with m.If(w_go):
                m.d[dom] += [axi.wdata.eq(aligned[width:]), axi.wstrb.eq(strobe)]
                with m.If(need_in):
                    m.d.comb += data_in.ready.eq(1)
                    m.d[dom] += [hold.eq(word_in),
                                 in_left.eq(Mux(in_now > lanes, in_now - lanes, 0))]
                with m.If(last):
                    m.d[dom] += started.eq(0)
                    m.d.comb += cq.r_en.eq(1)
                with m.Else():
                    m.d[dom] += [started.eq(1), out_left.eq(words_now - 1),
                                 later_need_in.eq(need_in & (in_now > lanes)), later_last.eq(words_now == 2)]

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
                         done.valid | cmd.valid),
        ]
        return m
