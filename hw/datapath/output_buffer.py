"""Output buffer: int32 partial sums of an output tile, double-buffered, drained through
YP requantizers."""

from amaranth import Array, Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import AccelConfig, check_power_of_two, check_range
from hw.datapath.dpe import RESULT_SHAPE
from hw.datapath.requant import Requantizer, table_write_layout

__all__ = ["OutputBuffer", "output_params_layout"]

output_params_layout = data.StructLayout({
    "bias": signed(32),            # bias_q of the kernel (zero-point term folded in)
    "multiplier": unsigned(32),    # IEEE-754 float32 bits of M[k]
    "zero_point": unsigned(8),
    "lo": unsigned(8),
    "hi": unsigned(8),
})


class OutputBuffer(wiring.Component):
    """Accumulates the DPE array's partial sums of one output tile and drains the tile,
    requantized, in DRAM (NCHW) order, while the next tile accumulates.

    The tile (``T_K x T_XO x T_YO`` int32 sums) is stored as words of ``KP x YP`` int32
    lanes: word ``(kg * out_rows + xo) * groups + g`` holds kernels ``kg*KP ..`` and
    columns ``g*YP ..`` of output row ``xo``. There are two halves of ``depth`` words, one
    ``Memory`` each (one write port, one read port), so one half accumulates while the
    other drains.

    Streams (all counts must be >= 1):

    ``cmd`` (``cmd_layout``): one command per pass, i.e. per channel tile of an output
    tile: ``kernel_groups`` (ceil(T_K / KP)), ``channels`` (T_C), ``out_rows`` (T_XO),
    ``groups`` (ceil(T_YO / YP)), ``init`` (first pass of an output tile: channel 0
    overwrites instead of accumulating), ``drain`` (last pass: on completion the half is
    handed to the drain), ``kernels`` (T_K) and ``out_cols`` (T_YO). Every output tile is
    a run of passes, the first with ``init`` and the last with ``drain`` (one pass may have
    both). The tile geometry (``kernels``, ``out_rows``, ``groups``, ``out_cols``) is
    taken from the ``init`` command. The next command loads as the current pass's last
    beat is accepted, so passes follow each other without a bubble.

    ``sums`` (``sums_layout``, the DPE array's ``{sums: KP x YP signed 20, tag}``, tag
    ignored): beats of a pass in the order ``kg, c, xo, g`` (outermost first). The sums
    are sign-extended and added with int32 wrap-around to the word (or written, on
    channel 0 of an ``init`` pass). One beat per cycle, sustained, also when consecutive
    beats hit the same word (the in-flight sum is forwarded).

    ``params`` (``params_layout``): ``T_K`` entries per output tile, in kernel order:
    ``{bias, multiplier, zero_point, lo, hi}``. Hand-over rule: the entries of a tile are
    accepted once the tile's ``init`` command has been accepted (i.e. once its half has
    been assigned to it, which waits until the previous tile in that half has been
    drained), and are stored with that half. So the params of tile ``t + 1`` are taken
    while tile ``t + 1`` accumulates, during the drain of tile ``t``. Params sent earlier
    are held off (``ready`` low); the drain of a tile waits until all ``T_K`` entries are
    in. Params of successive tiles are taken strictly in tile order.

    ``table`` (the :class:`Requantizer` table write layout): activation-table writes,
    forwarded to all YP requantizers; always ready.

    ``out`` (``out_layout``): ``{data: D x YP x u8, count, last}`` (``D = drain_words``).
    For ``k`` in ``kernels``, ``xo`` in ``out_rows``, ``g`` in ``groups`` step ``D``: the
    YP lanes of kernel ``k`` (word row ``k mod KP``, kernel group ``k div KP``) of words
    ``g .. g + D - 1``, requantized with kernel ``k``'s params (bias added by the
    requantizer); ``count = min(D * YP, out_cols - g * YP)`` valid bytes, lanes past
    ``count`` carry what the words hold; ``last`` marks the last beat of each ``(k, xo)``
    output row. One beat per cycle sustained within a tile (each half is ``D`` banks, word
    ``a`` in bank ``a mod D``, so the ``D`` words are read at once); one idle cycle (the
    drain start) between tiles whose halves are ready. A tile drains in
    ``T_K * T_XO * ceil(groups / D)`` cycles: ``D`` > 1 keeps up with layers that
    accumulate few channels (depthwise).

    Half hand-over: when the last beat of a ``drain`` pass has been written, the half is
    full; its drain starts once its params are complete and the previous drain has
    issued its last read. The half becomes free (and may take a new ``init`` command)
    once the drain's last word has entered the requantizers. A new ``init`` command waits
    (``cmd.ready`` low) while its half, the one not used by the previous tile, is busy.

    Latency: a sums beat is written 1 cycle after it is accepted; the first ``out`` beat
    of a tile appears 16 cycles after the last ``sums`` beat of its drain pass (if its
    params are in and the other half is not draining): 1 (write) + 1 (hand-over) +
    1 (drain start) + 1 (read) + 12 (:class:`Requantizer`) (:attr:`latency`, also
    :attr:`drain_latency`).
    """

    @property
    def latency(self):
        """Cycles from the last ``sums`` beat of a drain pass to the tile's first ``out``
        beat, when nothing else holds the drain back."""
        return 4 + Requantizer.LATENCY

    @property
    def drain_latency(self):
        return self.latency

    def __init__(self, *, kp, yp, depth, max_dim=1024, tag_width=1, drain_words=1):
        check_range("kp", kp, *AccelConfig.LIMITS["kp"])
        check_range("yp", yp, *AccelConfig.LIMITS["yp"])
        check_power_of_two("drain_words", drain_words, *AccelConfig.LIMITS["drain_words"])
        self.drain_words = drain_words
        check_range("depth", depth, 1, 1 << 22)
        check_range("max_dim", max_dim, 1, 65535)
        check_range("tag_width", tag_width, 1, 64)
        self.kp, self.yp, self.depth, self.max_dim = kp, yp, depth, max_dim
        # params entries per half: T_K <= kernel_groups * KP <= depth * KP
        self.max_kernels = min(max_dim, depth * kp)
        dim = range(max_dim + 1)
        self.cmd_layout = data.StructLayout({
            "kernel_groups": dim,
            "channels": unsigned(16),
            "out_rows": dim,
            "groups": dim,
            "init": 1,
            "drain": 1,
            "kernels": dim,
            "out_cols": dim,
        })
        self.sums_layout = data.StructLayout({
            "sums": data.ArrayLayout(data.ArrayLayout(RESULT_SHAPE, yp), kp),
            "tag": unsigned(tag_width),
        })
        self.params_layout = output_params_layout
        self.table_layout = table_write_layout
        self.out_layout = data.StructLayout({
            "data": data.ArrayLayout(unsigned(8), drain_words * yp),
            "count": range(drain_words * yp + 1),
            "last": 1,
        })
        self.word_layout = data.ArrayLayout(data.ArrayLayout(signed(32), yp), kp)
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "sums": In(stream.Signature(self.sums_layout)),
            "params": In(stream.Signature(self.params_layout)),
            "table": In(stream.Signature(self.table_layout)),
            "out": Out(stream.Signature(self.out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        kp, yp = self.kp, self.yp
        addr_shape = range(max(2, self.depth))
        dim = range(self.max_dim + 1)
        pbits = max(1, (self.max_kernels - 1).bit_length())

        # ---- per-half state --------------------------------------------------------------
        busy = Signal(2)        # assigned to a tile (init accepted) and not yet freed
        full = Signal(2)        # accumulation complete: owned by the drain
        pdone = Signal(2)       # all params of the tile are in
        t_last_kernel = Array(Signal(dim, name=f"t_last_kernel{h}") for h in range(2))
        t_rows = Array(Signal(dim, name=f"t_rows{h}") for h in range(2))
        t_groups = Array(Signal(dim, name=f"t_groups{h}") for h in range(2))
        t_cols = Array(Signal(dim, name=f"t_cols{h}") for h in range(2))

        # each half: D banks, word a in bank a mod D at a // D, so that D consecutive
        # words are read at once by the drain (D = drain_words)
        D = self.drain_words
        dbits = D.bit_length() - 1
        bank_depth = max(1, -(-self.depth // D))
        mems = []               # mems[h][b] = (write port, read port)
        for h in range(2):
            banks = []
            for b in range(D):
                mem = Memory(shape=unsigned(self.word_layout.size), depth=bank_depth, init=[])
                m.submodules[f"half{h}_bank{b}"] = mem
                banks.append((mem.write_port(), mem.read_port(domain="sync")))
            mems.append(banks)

        def bank_of(addr):
            return addr[:dbits] if dbits else 0

        def row_of(addr):
            return addr >> dbits

        m.submodules.params_mem = params_mem = Memory(
            shape=self.params_layout, depth=2 << pbits, init=[])
        pw = params_mem.write_port()
        pr = params_mem.read_port(domain="sync")

        # ---- accumulator: commands and sums ----------------------------------------------
        cur = Signal(self.cmd_layout)
        cur_valid = Signal()
        acc_half = Signal(init=1)       # half of the tile accumulating; the first goes to 0
        a_kg = Signal(dim)
        a_c = Signal(16)
        a_xo = Signal(dim)
        a_g = Signal(dim)
        a_addr = Signal(addr_shape)
        a_base = Signal(addr_shape)     # word of (kg, xo=0, g=0)

        accept = Signal()
        m.d.comb += [self.sums.ready.eq(cur_valid),
                     accept.eq(self.sums.valid & self.sums.ready)]
        # whether each counter is at its last value (last_*), registered as the counters move
        # from two values registered with the command: a single value (the last is 0), and
        # the value before the last; no adder or comparison before the handshakes
        counted = ("groups", "out_rows", "channels", "kernel_groups")
        single = {name: Signal(name=f"single_{name}") for name in counted}
        before_last = {name: Signal.like(getattr(cur, name), name=f"before_last_{name}") for name in counted}
        last_g, last_xo, last_c, last_kg = (Signal(name=f"last_{n}") for n in ("g", "xo", "c", "kg"))
        finishing = Signal()
        m.d.comb += finishing.eq(accept & last_g & last_xo & last_c & last_kg)

        def step(counter, last, name):
            """The counter's next value and its last flag: 0 after its last, else + 1."""
            m.d.sync += [counter.eq(Mux(last, 0, counter + 1)),
                         last.eq(Mux(last, single[name], counter == before_last[name]))]

        with m.If(accept):
            m.d.sync += a_addr.eq(a_addr + 1)
            step(a_g, last_g, "groups")
            with m.If(last_g):
                step(a_xo, last_xo, "out_rows")
                with m.If(last_xo):
                    m.d.sync += a_addr.eq(a_base)
                    step(a_c, last_c, "channels")
                    with m.If(last_c):
                        m.d.sync += [a_addr.eq(a_addr + 1), a_base.eq(a_addr + 1)]
                        step(a_kg, last_kg, "kernel_groups")

        new_half = ~acc_half
        can_load = ~cur_valid | finishing
        m.d.comb += self.cmd.ready.eq(can_load & (~self.cmd.payload.init |
                                                  ~busy.bit_select(new_half, 1)))
        with m.If(finishing):
            m.d.sync += cur_valid.eq(0)
        with m.If(self.cmd.valid & self.cmd.ready):
            cmd = self.cmd.payload
            m.d.sync += [cur.eq(cmd), cur_valid.eq(1), a_kg.eq(0), a_c.eq(0), a_xo.eq(0),
                         a_g.eq(0), a_addr.eq(0), a_base.eq(0),
                         *(single[name].eq(getattr(cmd, name) == 1) for name in counted),
                         *(before_last[name].eq(getattr(cmd, name) - 2) for name in counted),
                         *(last.eq(getattr(cmd, name) == 1) for name, last in (
                             ("groups", last_g), ("out_rows", last_xo), ("channels", last_c),
                             ("kernel_groups", last_kg)))]
            with m.If(cmd.init):
                m.d.sync += [acc_half.eq(new_half),
                             busy.bit_select(new_half, 1).eq(1),
                             t_last_kernel[new_half].eq(cmd.kernels - 1),
                             t_rows[new_half].eq(cmd.out_rows),
                             t_groups[new_half].eq(cmd.groups),
                             t_cols[new_half].eq(cmd.out_cols)]

        # Stage 1: read data of the accepted beat's word; add and write back.
        s1_valid = Signal()
        s1_addr = Signal(addr_shape)
        s1_half = Signal()
        s1_over = Signal()              # channel 0 of an init pass: overwrite
        s1_complete = Signal()          # last beat of a drain pass
        s1_sums = Signal(data.ArrayLayout(data.ArrayLayout(RESULT_SHAPE, yp), kp))
        m.d.sync += [
            s1_valid.eq(accept),
            s1_addr.eq(a_addr),
            s1_half.eq(acc_half),
            s1_over.eq(cur.init & (a_c == 0)),
            s1_complete.eq(finishing & cur.drain),
            s1_sums.eq(self.sums.payload.sums),
        ]
        # The previous cycle's write is not visible to this cycle's read data: forward it.
        fwd_valid = Signal()
        fwd_addr = Signal(addr_shape)
        fwd_half = Signal()
        fwd_word = Signal(self.word_layout)
        old = Signal(self.word_layout)
        new = Signal(self.word_layout)
        banks_read = [Array(rp.data for _, rp in mems[h])[bank_of(s1_addr)] if D > 1 else mems[h][0][1].data
                      for h in range(2)]
        read_word = Mux(s1_half, banks_read[1], banks_read[0])
        forward = fwd_valid & (fwd_addr == s1_addr) & (fwd_half == s1_half)
        m.d.comb += old.eq(Mux(forward, fwd_word.as_value(), read_word))
        for k in range(kp):
            for j in range(yp):
                m.d.comb += new[k][j].eq(Mux(s1_over, 0, old[k][j]) + s1_sums[k][j])
        m.d.sync += [fwd_valid.eq(s1_valid), fwd_addr.eq(s1_addr), fwd_half.eq(s1_half),
                     fwd_word.eq(new)]
        for h in range(2):
            for b, (wp, _) in enumerate(mems[h]):
                m.d.comb += [wp.addr.eq(row_of(s1_addr)), wp.data.eq(new),
                             wp.en.eq(s1_valid & (s1_half == h) & (bank_of(s1_addr) == b))]
        with m.If(s1_valid & s1_complete):
            m.d.sync += full.bit_select(s1_half, 1).eq(1)

        # ---- params writer ---------------------------------------------------------------
        pw_half = Signal()
        pw_count = Signal(dim)
        m.d.comb += [
            self.params.ready.eq(busy.bit_select(pw_half, 1) & ~pdone.bit_select(pw_half, 1)),
            pw.addr.eq(Cat(pw_count[0:pbits], pw_half)),
            pw.data.eq(self.params.payload),
            pw.en.eq(self.params.valid & self.params.ready),
        ]
        with m.If(self.params.valid & self.params.ready):
            m.d.sync += pw_count.eq(pw_count + 1)
            with m.If(pw_count == t_last_kernel[pw_half]):
                m.d.sync += [pw_count.eq(0), pw_half.eq(~pw_half),
                             pdone.bit_select(pw_half, 1).eq(1)]

        # ---- drain -----------------------------------------------------------------------
        lanes = D * yp                  # bytes per out beat: D words of one kernel row
        reqs = [Requantizer() for _ in range(lanes)]
        for j, req in enumerate(reqs):
            m.submodules[f"requant{j}"] = req
            m.d.comb += [req.table.valid.eq(self.table.valid),
                         req.table.payload.eq(self.table.payload),
                         req.o.ready.eq(self.out.ready),
                         self.out.payload.data[j].eq(req.o.payload)]
        m.d.comb += [self.table.ready.eq(1), self.out.valid.eq(reqs[0].o.valid)]
        req_ready = reqs[0].i.ready             # all requantizers advance in lockstep

        dh = Signal()                   # half being (or next to be) drained
        draining = Signal()
        d_groups = Signal(dim)
        d_cols = Signal(dim)
        d_k = Signal(dim)
        d_r = Signal(range(kp))
        d_xo = Signal(dim)
        d_g = Signal(dim)
        d_addr = Signal(addr_shape)
        d_base = Signal(addr_shape)
        d_rem = Signal(signed(Shape.cast(dim).width + 1))    # out_cols - g * YP
        d_end_rows, d_end_kernels = Signal(dim), Signal(dim)   # the last d_xo, d_k

        d1_valid = Signal()
        d_advance = Signal()
        m.d.comb += d_advance.eq(~d1_valid | req_ready)
        d_fire = Signal()
        m.d.comb += d_fire.eq(draining & d_advance)

        with m.If(~draining & full.bit_select(dh, 1) & pdone.bit_select(dh, 1)):
            m.d.sync += [draining.eq(1), d_end_rows.eq(t_rows[dh] - 1), d_end_kernels.eq(t_last_kernel[dh]),
                         d_groups.eq(t_groups[dh]), d_cols.eq(t_cols[dh]), d_rem.eq(t_cols[dh]),
                         d_k.eq(0), d_r.eq(0), d_xo.eq(0), d_g.eq(0), d_base.eq(0)]

        dl_g = d_g + D >= d_groups
        dl_xo = d_xo == d_end_rows
        dl_k = d_k == d_end_kernels
        # d_addr: word (kg, xo, g) of the beat's first word; d_row: that of (kg, xo, 0);
        # d_base: that of (kg, 0, 0)
        d_row = Signal(addr_shape)
        m.d.comb += d_addr.eq(d_row + d_g)
        with m.If(d_fire):
            m.d.sync += [d_g.eq(d_g + D), d_rem.eq(d_rem - lanes)]
            with m.If(dl_g):
                m.d.sync += [d_g.eq(0), d_rem.eq(d_cols), d_xo.eq(d_xo + 1),
                             d_row.eq(d_row + d_groups)]
                with m.If(dl_xo):
                    m.d.sync += [d_xo.eq(0), d_k.eq(d_k + 1)]
                    with m.If(d_r == kp - 1):
                        m.d.sync += [d_r.eq(0), d_base.eq(d_row + d_groups)]
                    with m.Else():
                        m.d.sync += [d_r.eq(d_r + 1), d_row.eq(d_base)]
                    with m.If(dl_k):
                        m.d.sync += [draining.eq(0), dh.eq(~dh)]
        with m.If(~draining & full.bit_select(dh, 1) & pdone.bit_select(dh, 1)):
            m.d.sync += d_row.eq(0)

        # Read ports: the drain owns a full half (bank b: the one of words d_addr ..
        # d_addr + D - 1 that lies in it), the accumulator the other.
        for h in range(2):
            owned = full[h]
            for b, (_, rp) in enumerate(mems[h]):
                drain_addr = row_of(d_addr + ((b - bank_of(d_addr)) & (D - 1))) if D > 1 else d_addr
                m.d.comb += [rp.addr.eq(Mux(owned, drain_addr, row_of(a_addr))),
                             rp.en.eq(Mux(owned, d_advance, 1))]
        m.d.comb += [pr.addr.eq(Cat(d_k[0:pbits], dh)), pr.en.eq(d_advance)]

        # Stage D1: the words and params are read; select row k mod KP of each word into
        # the requantizers, word i (d_addr + i) from bank (d_addr + i) mod D.
        d1_half = Signal()
        d1_row = Signal(range(kp))
        d1_bank = Signal(max(1, dbits))
        d1_count = Signal(range(lanes + 1))
        d1_last = Signal()
        d1_final = Signal()
        with m.If(d_advance):
            m.d.sync += [d1_valid.eq(d_fire), d1_half.eq(dh), d1_row.eq(d_r),
                         d1_bank.eq(bank_of(d_addr)),
                         d1_count.eq(Mux(d_rem >= lanes, lanes, d_rem)), d1_last.eq(dl_g),
                         d1_final.eq(dl_g & dl_xo & dl_k)]
        row = Signal(lanes * 32)
        for i in range(D):
            bank_data = [Mux(d1_half, mems[1][b][1].data, mems[0][b][1].data) for b in range(D)]
            word = Array(bank_data)[(d1_bank + i)[:dbits]] if D > 1 else bank_data[0]
            m.d.comb += row[i * yp * 32:(i + 1) * yp * 32].eq(
                word.word_select(d1_row, yp * 32) if kp > 1 else word)
        for j, req in enumerate(reqs):
            p = pr.data
            m.d.comb += [req.i.valid.eq(d1_valid),
                         req.i.payload.acc.eq(row[32 * j:32 * (j + 1)]),
                         req.i.payload.bias.eq(p.bias),
                         req.i.payload.multiplier.eq(p.multiplier),
                         req.i.payload.zero_point.eq(p.zero_point),
                         req.i.payload.lo.eq(p.lo),
                         req.i.payload.hi.eq(p.hi)]
        # The last word has entered the requantizers: the half is free again.
        with m.If(d1_valid & d1_final & req_ready):
            m.d.sync += [full.bit_select(d1_half, 1).eq(0), busy.bit_select(d1_half, 1).eq(0),
                         pdone.bit_select(d1_half, 1).eq(0)]

        # count and last travel beside the requantizers' pipeline.
        side_layout = data.StructLayout({"count": range(lanes + 1), "last": 1})
        side = [Signal(side_layout, name=f"side{s}") for s in range(Requantizer.LATENCY)]
        with m.If(req_ready):
            m.d.sync += side[0].eq(Cat(d1_count, d1_last))
            for s in range(1, len(side)):
                m.d.sync += side[s].eq(side[s - 1])
        m.d.comb += [self.out.payload.count.eq(side[-1].count),
                     self.out.payload.last.eq(side[-1].last)]
        return m
