"""Line buffer: rows of one channel image at a time -> YP 3x3 windows per cycle."""

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import CHANNEL_BLOCK, AccelConfig, check_power_of_two, check_range, word_bytes_for
from hw.datapath.dpe import ACTIVATIONS

__all__ = ["LineBuffer", "line_buffer_command_layout", "word_bytes_for"]


def line_buffer_command_layout(max_row, max_rows=None, max_channels=(1 << 16) - 1):
    """Command fields sized for rows of up to ``max_row`` columns, tiles of up to
    ``max_rows`` rows (input rows and output rows) and ``max_channels`` channel images."""
    max_rows = max_row if max_rows is None else max_rows
    rows = range(max_rows + 1)
    return data.StructLayout({
        "channels": range(max_channels + 1),   # channel images in this pass
        "rows_in": rows,               # stored rows per channel image
        "cols_in": range(max_row + 1),  # stored columns per row
        "out_rows": rows,
        # ceil(out_cols / yp): out_cols <= cols_in + 2 (3x3 kernel, padding 2)
        "groups": range(max_row + 3),
        "pad_top": unsigned(2),        # padded rows above stored row 0
        "pad_left": unsigned(2),       # padded columns left of stored column 0
        "stride": unsigned(2),         # 1 or 2
        "kernel": unsigned(2),         # 1 or 3
        "zero_point": unsigned(8),     # value of every padded position
    })


class LineBuffer(wiring.Component):
    """Turns rows of channel images into YP sliding 3x3 windows per cycle, in ``lanes``
    lanes at once (one channel image per lane, all with the same geometry: the lanes of a
    depthwise layer's kernel group; a 3x3 layer uses lane 0).

    Rows arrive on ``rows`` as ``words_per_row = ceil(cols_in / B)`` words of ``B``
    bytes (``B = word_bytes_for(yp)``), row by row, channel by channel, for each command
    accepted on ``cmd``. Rows go into a ring of ``slots`` row slots (8 by default,
    ``AccelConfig.line_buffer_slots``), each split into even and odd word banks: a
    window row spans two consecutive words, read in one cycle, and the three rows of a
    window are read at once. So there is no bubble per output row, per
    channel or per command, provided rows arrive ahead of use (the ring holds
    ``slots - 3`` rows beyond the 3 in use).

    For output row ``xo`` and window ``j`` of group ``g``, tap ``(dr, dc)`` is stored row
    ``xo * stride + dr - pad_top`` and column ``(g * yp + j) * stride + dc - pad_left``;
    positions outside the stored rows and columns carry ``zero_point``. With ``kernel``
    1, only the centre tap is used (others carry ``zero_point``) and the centre is stored
    ``(xo * stride - pad_top, yo * stride - pad_left)``.

    Limits: rows of at most ``max_row`` columns; at most ``max_rows`` stored rows per
    channel image and output rows per command (default ``max_row``); at most
    ``max_channels`` channel images per command. The command fields and counters are
    sized for these, so every command within them runs.

    ``rows``: stream of ``lanes`` row words; ``windows``: stream of ``{windows: lanes x YP x
    9 u8, first, last}``: ``first``/``last`` mark a channel image's first and last beat.
    Groups past ``out_cols`` are emitted too.

    Latency: 3 cycles from the transfer of the last row word a window needs to the
    window's transfer (command accepted before, ``windows`` ready): :attr:`latency`.
    """

    LATENCY = 3

    @property
    def latency(self):
        return self.LATENCY

    def __init__(self, *, yp, max_row, max_rows=None, max_channels=(1 << 16) - 1, slots=8, lanes=1):
        check_range("yp", yp, *AccelConfig.LIMITS["yp"])
        check_range("max_row", max_row, yp + 2, 4096)
        max_rows = max_row if max_rows is None else max_rows
        check_range("max_rows", max_rows, 1, (1 << 16) - 1)
        check_range("max_channels", max_channels, 1, (1 << 24) - 1)
        check_power_of_two("slots", slots, *AccelConfig.LIMITS["line_buffer_slots"])
        check_range("lanes", lanes, 1, CHANNEL_BLOCK)
        self.lanes = lanes
        self.slots, self.slot_bits = slots, slots.bit_length() - 1
        self.yp = yp
        self.max_row = max_row
        self.max_rows = max_rows
        self.max_channels = max_channels
        self.word_bytes = word_bytes_for(yp)
        self.bank_depth = max(2, -(-max_row // (2 * self.word_bytes)) + 1)
        self.command_layout = line_buffer_command_layout(max_row, max_rows, max_channels)
        self.word_layout = data.ArrayLayout(unsigned(8), self.word_bytes)
        self.rows_layout = data.ArrayLayout(self.word_layout, lanes)
        self.windows_layout = data.StructLayout({
            "windows": data.ArrayLayout(data.ArrayLayout(ACTIVATIONS, yp), lanes), "first": 1, "last": 1})
        super().__init__({
            "cmd": In(stream.Signature(self.command_layout)),
            "rows": In(stream.Signature(self.rows_layout)),
            "windows": Out(stream.Signature(self.windows_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        yp, B = self.yp, self.word_bytes
        row_count = unsigned(32)        # rows since reset, across commands (wraps)

        # signed widths of stored row and column numbers (stride 2 doubles them)
        row_bits = max(16, (2 * self.max_rows + 8).bit_length() + 1)
        col_bits = max(18, (2 * yp * (self.max_row + 3) + 8).bit_length() + 1)

        def start_row(cmd):
            return -(cmd.pad_top + (cmd.kernel == 1))

        def row_step(cmd):
            return Mux(cmd.stride == 2, 2, 1)

        def needed(cmd, top):
            """The last stored row a window row at ``top`` reads: top + 2, clipped."""
            return Mux(top + 2 >= cmd.rows_in, cmd.rows_in - 1, top + 2)

        # Commands go to the row writer first, then to the window generator, with the
        # placement of their first two output rows (computed on the way in)
        placement_layout = data.StructLayout({"top": signed(row_bits), "next_top": signed(row_bits + 1),
                                              "needed": signed(row_bits + 1),
                                              "next_needed": signed(row_bits + 1)})
        entry_layout = data.StructLayout({"cmd": self.command_layout, "placement": placement_layout})
        m.submodules.gen_queue = gen_queue = fifo.SyncFIFOBuffered(width=entry_layout.size, depth=3)
        wcmd = Signal(self.command_layout)
        wcmd_valid = Signal()
        gcmd = Signal(self.command_layout)
        gcmd_valid = Signal()

        rows_written = Signal(row_count)     # complete rows in the ring
        row_done = Signal()                  # a row completes this cycle
        rows_freed = Signal(row_count)       # rows the generator will never read again

        # ---- writer ------------------------------------------------------------------
        w_word = Signal(range(self.bank_depth * 2 + 1))
        w_row = Signal(range(self.max_rows + 1))
        w_chan = Signal(range(self.max_channels + 1))
        # the counters' last values, registered with the command
        w_end_word = Signal(range(self.bank_depth * 2 + 1))
        w_end_row, w_end_chan = Signal.like(wcmd.rows_in), Signal.like(wcmd.channels)

        with m.If(~wcmd_valid):
            m.d.comb += [self.cmd.ready.eq(gen_queue.w_rdy)]
            with m.If(self.cmd.valid & gen_queue.w_rdy):
                p = self.cmd.payload
                m.d.sync += [wcmd.eq(p), wcmd_valid.eq(1), w_word.eq(0), w_row.eq(0), w_chan.eq(0),
                             w_end_word.eq(((p.cols_in + B - 1) >> (B.bit_length() - 1)) - 1),
                             w_end_row.eq(p.rows_in - 1), w_end_chan.eq(p.channels - 1)]
        entry_in = data.View(entry_layout, gen_queue.w_data)
        p, start = self.cmd.payload, start_row(self.cmd.payload)
        m.d.comb += [entry_in.cmd.eq(p),
                     entry_in.placement.top.eq(start),
                     entry_in.placement.next_top.eq(start + row_step(p)),
                     entry_in.placement.needed.eq(needed(p, start)),
                     entry_in.placement.next_needed.eq(needed(p, start + row_step(p))),
                     gen_queue.w_en.eq(self.cmd.valid & self.cmd.ready)]

        slot_free = (rows_written - rows_freed)[0:32] < self.slots
        m.d.comb += self.rows.ready.eq(wcmd_valid & slot_free)
        write_slot = rows_written[0:self.slot_bits]

        banks = []
        for slot in range(self.slots):
            for parity in range(2):
                mem = Memory(shape=unsigned(self.rows_layout.size), depth=self.bank_depth, init=[])
                m.submodules[f"slot{slot}_bank{parity}"] = mem
                banks.append(mem)
                wp = mem.write_port()
                m.d.comb += [wp.addr.eq(w_word >> 1), wp.data.eq(self.rows.payload),
                             wp.en.eq(self.rows.valid & self.rows.ready &
                                      (write_slot == slot) & (w_word[0] == parity))]

        with m.If(self.rows.valid & self.rows.ready):
            m.d.sync += w_word.eq(w_word + 1)
            with m.If(w_word == w_end_word):
                m.d.sync += [w_word.eq(0), w_row.eq(w_row + 1), rows_written.eq(rows_written + 1)]
                m.d.comb += row_done.eq(1)
                with m.If(w_row == w_end_row):
                    m.d.sync += [w_row.eq(0), w_chan.eq(w_chan + 1)]
                    with m.If(w_chan == w_end_chan):
                        m.d.sync += wcmd_valid.eq(0)

        # ---- window generator ----------------------------------------------------------
        g_xo = Signal(range(self.max_rows + 1))
        g_grp = Signal(range(self.max_row + 3))
        g_chan = Signal(range(self.max_channels + 1))
        chan_base = Signal(row_count)        # serial number of this channel's stored row 0


        kernel1 = gcmd.kernel == 1
        stride2 = gcmd.stride == 2

        # The window's place, in registers stepped with the counters (no multiplication
        # or wide comparison between the counters and the fire decision):
        # top_row: stored row of tap row 0, xo * stride - pad_top (kernel 1 centres the
        # window: pad + 1); first_col: stored column of window 0's tap column 0,
        # g * yp * stride - pad_left; last_needed: the last stored row the beat reads,
        # top_row + 2 clipped to the image; next_top: the next output row's top_row, and
        # the rows before it (clipped) that its predecessors free.
        top_row = Signal(signed(row_bits))
        first_col = Signal(signed(col_bits))
        last_needed = Signal(signed(row_bits + 1))
        next_top = Signal(signed(row_bits + 1))

        def start_col(cmd):
            return -(cmd.pad_left + (cmd.kernel == 1))

        next_needed = Signal(signed(row_bits + 1))      # last_needed of next_top's row

        # the command's row placement constants, registered as it loads: the output rows'
        # step, the first output row's placement (a channel's start) and its successor's
        g_step = Signal(2)
        g_last_in = Signal.like(last_needed)
        g_start = {name: Signal.like(reg, name=f"g_start_{name}") for name, reg in (
            ("top", top_row), ("next_top", next_top), ("needed", last_needed), ("next_needed", next_needed))}

        def place_rows(top, following, top_needed, following_needed):
            """Load top_row with ``top``, next_top with ``following`` and their needs."""
            m.d.sync += [top_row.eq(top), next_top.eq(following), last_needed.eq(top_needed),
                         next_needed.eq(following_needed)]

        def place_next_row():
            """The output row after this one (from registers: one adder, one comparison)."""
            after = next_top + g_step
            place_rows(next_top, after, next_needed,
                       Mux(after + 2 >= gcmd.rows_in, g_last_in, after + 2))

        rows_ready = Signal()
        # rows_written - chan_base, kept in a register as both move
        rows_here = Signal(row_count)
        channel_done = Signal()
        m.d.sync += rows_here.eq(rows_here + row_done - Mux(channel_done, gcmd.rows_in, 0))
        m.d.comb += rows_ready.eq(rows_here[0:32].as_signed() > last_needed)

        advance = Signal()
        m.d.comb += advance.eq(~self.windows.valid | self.windows.ready)
        fire = Signal()
        m.d.comb += fire.eq(gcmd_valid & rows_ready & advance)

        finishing = Signal()
        g_ends = {name: Signal.like(getattr(gcmd, name), name=f"g_end_{name}")
                  for name in ("groups", "out_rows", "channels")}
        # each counter at its last value: registers, loaded with the counters' next values
        last_grp, last_row, last_chan = Signal(), Signal(), Signal()
        # and each counter's value before its last: the flags need no adder
        g_before_last = {name: Signal.like(getattr(gcmd, name), name=f"g_before_last_{name}")
                         for name in ("groups", "out_rows", "channels")}
        with m.If(fire):
            m.d.sync += [g_grp.eq(g_grp + 1), first_col.eq(first_col + Mux(stride2, 2 * yp, yp)),
                         last_grp.eq(g_grp == g_before_last["groups"])]
            with m.If(last_grp):
                m.d.sync += [g_grp.eq(0), g_xo.eq(g_xo + 1), first_col.eq(start_col(gcmd)),
                             last_grp.eq(g_ends["groups"] == 0),
                             last_row.eq(g_xo == g_before_last["out_rows"])]
                place_next_row()
                # rows above the next output row's top are never read again
                with m.If(next_top > 0):
                    m.d.sync += rows_freed.eq(chan_base + Mux(next_top > gcmd.rows_in,
                                                              gcmd.rows_in, next_top))
                with m.If(last_row):
                    m.d.sync += [g_xo.eq(0), g_chan.eq(g_chan + 1), last_row.eq(g_ends["out_rows"] == 0),
                                 last_chan.eq(g_chan == g_before_last["channels"]),
                                 chan_base.eq(chan_base + gcmd.rows_in),
                                 rows_freed.eq(chan_base + gcmd.rows_in)]
                    m.d.comb += channel_done.eq(1)
                    place_rows(*g_start.values())
                    with m.If(last_chan):
                        m.d.sync += gcmd_valid.eq(0)
                        m.d.comb += finishing.eq(1)

        # The next command loads as the last beat of the current one fires: no bubble.
        with m.If((~gcmd_valid | finishing) & gen_queue.r_rdy):
            m.d.comb += gen_queue.r_en.eq(1)
            entry = data.View(entry_layout, gen_queue.r_data)
            new_cmd = entry.cmd
            m.d.sync += [gcmd.eq(new_cmd), gcmd_valid.eq(1),
                         g_xo.eq(0), g_grp.eq(0), g_chan.eq(0), first_col.eq(start_col(new_cmd)),
                         *(end.eq(getattr(new_cmd, name) - 1) for name, end in g_ends.items()),
                         *(before.eq(getattr(new_cmd, name) - 2) for name, before in g_before_last.items()),
                         last_grp.eq(new_cmd.groups == 1), last_row.eq(new_cmd.out_rows == 1),
                         last_chan.eq(new_cmd.channels == 1)]
            placement = [getattr(entry.placement, name) for name in ("top", "next_top", "needed", "next_needed")]
            place_rows(*placement)
            m.d.sync += [g_step.eq(row_step(new_cmd)), g_last_in.eq(new_cmd.rows_in - 1),
                         *(reg.eq(value) for reg, value in zip(g_start.values(), placement))]

        # Stage 1: read words floor(first_col / B) and the next, from every slot.
        word0 = Signal(signed(col_bits))
        m.d.comb += word0.eq(first_col >> (B.bit_length() - 1))
        word1 = Signal(signed(col_bits))
        m.d.comb += word1.eq(word0 + 1)
        even_word = Mux(word0[0], word1, word0)
        odd_word = Mux(word0[0], word0, word1)
        reads = []
        for index, mem in enumerate(banks):
            rp = mem.read_port(domain="sync")
            parity = index % 2
            m.d.comb += [rp.addr.eq((odd_word if parity else even_word) >> 1), rp.en.eq(advance)]
            reads.append(rp)

        s1_valid = Signal()
        s1_offset = Signal(range(B))                     # window start within word0
        s1_word0_odd = Signal()
        s1_col = Signal(signed(col_bits))
        s1_rows = [Signal(self.slot_bits, name=f"s1_slot{r}") for r in range(3)]
        s1_row_ok = Signal(3)
        s1_first = Signal()
        s1_last = Signal()
        s1_kernel1 = Signal()
        s1_cols_in = Signal(range(self.max_row + 1))
        s1_zero = Signal(8)
        s1_stride2 = Signal()
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(fire),
                s1_offset.eq(first_col[0:B.bit_length() - 1] if B > 1 else 0),
                s1_word0_odd.eq(word0[0]),
                s1_col.eq(first_col),
                s1_first.eq((g_grp == 0) & (g_xo == 0)),
                s1_last.eq(last_grp & last_row),
                s1_kernel1.eq(kernel1),
                s1_cols_in.eq(gcmd.cols_in),
                s1_zero.eq(gcmd.zero_point),
                s1_stride2.eq(stride2),
            ]
            for r in range(3):
                row = top_row + r
                m.d.sync += [s1_rows[r].eq((chan_base + row)[0:self.slot_bits]),
                             s1_row_ok[r].eq((row >= 0) & (row < gcmd.rows_in))]

        # Stage 2: pick each tap out of the two words of its row slot, in every lane.
        span = 2 * yp + 1                                # columns a stride-2 beat touches
        out = Signal(self.windows_layout)
        inside = {}
        for r in range(3):
            for col in range(span):
                stored = s1_col + col
                inside[r, col] = Signal(name=f"inside{r}_{col}")
                m.d.comb += inside[r, col].eq(s1_row_ok[r] & (stored >= 0) & (stored < s1_cols_in))
        for lane in range(self.lanes):
            pairs = []                                   # per slot: word0 then word1, 2B bytes
            for slot in range(self.slots):
                even = data.View(self.rows_layout, reads[2 * slot].data)[lane]
                odd = data.View(self.rows_layout, reads[2 * slot + 1].data)[lane]
                pairs.append(Mux(s1_word0_odd, Cat(odd, even), Cat(even, odd)))
            pairs = Array(pairs)
            for r in range(3):
                pair = Signal(16 * B, name=f"pair{lane}_{r}")
                m.d.comb += pair.eq(pairs[s1_rows[r]])
                shifted = Signal(8 * span, name=f"shifted{lane}_{r}")
                m.d.comb += shifted.eq(pair >> (s1_offset * 8))
                for j in range(yp):
                    for dc in range(3):
                        value = Mux(s1_stride2, shifted.word_select(2 * j + dc, 8),
                                    shifted.word_select(j + dc, 8))
                        use = Mux(s1_stride2, inside[r, 2 * j + dc], inside[r, j + dc])
                        if not (r == 1 and dc == 1):
                            use = use & ~s1_kernel1
                        m.d.comb += out.windows[lane][j][3 * r + dc].eq(Mux(use, value, s1_zero))
        m.d.comb += [out.first.eq(s1_first), out.last.eq(s1_last)]

        payload = Signal(self.windows_layout)
        valid = Signal()
        with m.If(advance):
            m.d.sync += [payload.eq(out), valid.eq(s1_valid)]
        m.d.comb += [self.windows.valid.eq(valid), self.windows.payload.eq(payload)]
        return m
