"""Pointwise reader: rows of nine channels -> YP channel-packed windows per cycle (1x1 kernels)."""

from amaranth import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import CHANNEL_BLOCK, AccelConfig, check_range, word_bytes_for
from hw.datapath.dpe import ACTIVATIONS

__all__ = ["PointwiseReader"]


class PointwiseReader(wiring.Component):
    """Turns rows of a block of nine channels into YP channel-packed windows per cycle, the
    1x1 kernel's counterpart of :class:`hw.datapath.line_buffer.LineBuffer`.

    ``rows``: stream of ``CHANNEL_BLOCK`` row words (``B = word_bytes_for(yp)`` u8 each),
    lane ``t`` holding channel ``9b + t`` of block ``b``, as
    :class:`hw.datapath.streaming_buffer.StreamingBuffer` replays them: per command,
    ``channels`` channel images (blocks), each ``out_rows`` rows of ``row_words`` words.

    ``cmd``: ``{channels, out_rows, groups, row_words, stride}``. For each row, ``groups``
    beats: window ``j`` of beat ``g`` is the pixel at column ``(g * yp + j) * stride`` of the
    row, tap ``t`` its channel ``t``. So DPE ``(k, j)`` multiplies nine channels of one
    pixel by kernel ``k``'s nine weights of the block. Columns past the row's words carry
    stale bytes (the output buffer drops them). Every word of a row must be needed by its
    beats and every beat must start inside the row's words:
    ``(groups - 1) * yp * stride < row_words * B <= groups * yp * stride + B - 1``.

    ``windows``: stream of ``{windows: YP x 9 u8, first, last}`` (the line buffer's layout);
    ``first`` / ``last`` mark a channel image's first and last beat.

    Throughput: one beat per cycle, with no bubble between rows, channel images or
    commands while rows arrive in time (a beat takes at most one new word; four words are
    queued). Latency: 2 cycles from the transfer of the last row word a beat needs to the
    beat (``windows`` ready): :attr:`latency`.
    """

    LATENCY = 2
    QUEUE = 4

    @property
    def latency(self):
        return self.LATENCY

    def __init__(self, *, yp, max_words, max_rows=(1 << 16) - 1, max_groups=(1 << 16) - 1,
                 max_channels=(1 << 16) - 1):
        check_range("yp", yp, *AccelConfig.LIMITS["yp"])
        check_range("max_words", max_words, 1, 1 << 22)
        check_range("max_rows", max_rows, 1, (1 << 16) - 1)
        check_range("max_groups", max_groups, 1, 1 << 24)
        check_range("max_channels", max_channels, 1, (1 << 24) - 1)
        self.yp = yp
        self.word_bytes = word_bytes_for(yp)
        self.lanes = CHANNEL_BLOCK
        self.rows_layout = data.ArrayLayout(data.ArrayLayout(unsigned(8), self.word_bytes), self.lanes)
        self.command_layout = data.StructLayout({
            "channels": range(max_channels + 1), "out_rows": range(max_rows + 1),
            "groups": range(max_groups + 1), "row_words": range(max_words + 1), "stride": unsigned(2)})
        self.windows_layout = data.StructLayout({
            "windows": data.ArrayLayout(ACTIVATIONS, yp), "first": 1, "last": 1})
        super().__init__({
            "cmd": In(stream.Signature(self.command_layout)),
            "rows": In(stream.Signature(self.rows_layout)),
            "windows": Out(stream.Signature(self.windows_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        yp, B, lanes, depth = self.yp, self.word_bytes, self.lanes, self.QUEUE
        word_bits = self.rows_layout.size

        # ---- word queue: a shift register that pops one or two words at a time ----------
        entries = [Signal(word_bits, name=f"entry{i}") for i in range(depth)]
        count = Signal(range(depth + 1))
        pops = Signal(range(3))
        push = Signal()
        m.d.comb += [self.rows.ready.eq(count <= depth - 2), push.eq(self.rows.valid & self.rows.ready)]
        kept = count - pops
        for i in range(depth):
            shifted = Array(entries + [entries[-1]] * 2)[i + pops]
            m.d.sync += entries[i].eq(Mux(push & (kept == i), self.rows.payload, shifted))
        m.d.sync += count.eq(kept + push)

        # ---- beats -------------------------------------------------------------------------
        cmd = Signal(self.command_layout)
        cmd_valid = Signal()
        g = Signal.like(cmd.groups)
        row = Signal.like(cmd.out_rows)
        chan = Signal.like(cmd.channels)
        word = Signal.like(cmd.row_words)        # row word held in entry 0
        pos = Signal(range(B))                    # beat start within entry 0
        stride2 = cmd.stride == 2
        step = Mux(stride2, 2 * yp, yp)           # columns per beat, at most B / 2

        # each counter's last value, registered with the command: equalities, no adders
        ends = {name: Signal.like(getattr(cmd, name), name=f"end_{name}")
                for name in ("groups", "out_rows", "channels", "row_words")}
        last_row = row == ends["out_rows"]
        groups_before_last = Signal.like(cmd.groups)     # groups - 2: g + 1 == end without an adder
        last_chan = chan == ends["channels"]

        def beat_need(last, word_, pos_, step_, row_words, end_words):
            """Row words the beat at (word_, pos_) takes from the queue: the row's rest on
            its last beat, else one, or two when it spans two words."""
            return Mux(last, row_words - word_, 1 + ((pos_ + step_ > B) & (word_ < end_words)))

        # the beat's last_g (g is the row's last group) and need: registers, loaded with
        # the next beat's values as the counters move
        last_g = Signal()
        need = Signal(len(cmd.row_words) + 1)
        advance = Signal()
        m.d.comb += advance.eq(~self.windows.valid | self.windows.ready)
        fire = Signal()
        m.d.comb += fire.eq(cmd_valid & advance & (count >= need))

        next_pos = Signal(range(2 * B))
        m.d.comb += next_pos.eq(pos + step)
        word_next, pos_next = Signal.like(word), Signal.like(pos)
        finishing = Signal()
        with m.If(fire):
            with m.If(last_g):
                m.d.comb += pops.eq(need)
                m.d.sync += [g.eq(0), pos.eq(0), word.eq(0), row.eq(row + 1),
                             last_g.eq(ends["groups"] == 0),
                             need.eq(beat_need(ends["groups"] == 0, 0, 0, step, cmd.row_words,
                                               ends["row_words"]))]
                with m.If(last_row):
                    m.d.sync += [row.eq(0), chan.eq(chan + 1)]
                    with m.If(last_chan):
                        m.d.sync += cmd_valid.eq(0)
                        m.d.comb += finishing.eq(1)
            with m.Else():
                m.d.comb += [word_next.eq(word), pos_next.eq(next_pos)]
                with m.If(next_pos >= B):
                    m.d.comb += [pops.eq(1), pos_next.eq(next_pos - B), word_next.eq(word + 1)]
                last_next = g == groups_before_last
                m.d.sync += [g.eq(g + 1), pos.eq(pos_next), word.eq(word_next), last_g.eq(last_next),
                             need.eq(beat_need(last_next, word_next, pos_next, step, cmd.row_words,
                                               ends["row_words"]))]
        m.d.comb += self.cmd.ready.eq(~cmd_valid | finishing)
        with m.If(self.cmd.valid & self.cmd.ready):
            p = self.cmd.payload
            m.d.sync += [cmd.eq(p), cmd_valid.eq(1), g.eq(0), row.eq(0),
                         chan.eq(0), word.eq(0), pos.eq(0),
                         *(end.eq(getattr(p, name) - 1) for name, end in ends.items()),
                         groups_before_last.eq(p.groups - 2),
                         last_g.eq(p.groups == 1),
                         need.eq(beat_need(p.groups == 1, 0, 0, Mux(p.stride == 2, 2 * yp, yp),
                                           p.row_words, p.row_words - 1))]

        # window j, tap t: byte pos + j * stride of lane t of entries 0 and 1
        first = data.View(self.rows_layout, entries[0])
        second_word = data.View(self.rows_layout, entries[1])
        out = Signal(self.windows_layout)
        span = 2 * yp                             # columns a stride-2 beat touches
        for t in range(lanes):
            pair = Signal(16 * B, name=f"pair{t}")
            m.d.comb += pair.eq(Cat(first[t], second_word[t]))
            shifted = Signal(8 * span, name=f"shifted{t}")
            m.d.comb += shifted.eq(pair >> (pos * 8))
            for j in range(yp):
                m.d.comb += out.windows[j][t].eq(
                    Mux(stride2, shifted.word_select(2 * j, 8), shifted.word_select(j, 8)))
        m.d.comb += [out.first.eq((g == 0) & (row == 0)), out.last.eq(last_g & last_row)]

        valid = Signal()
        payload = Signal(self.windows_layout)
        with m.If(advance):
            m.d.sync += [valid.eq(fire), payload.eq(out)]
        m.d.comb += [self.windows.valid.eq(valid), self.windows.payload.eq(payload)]
        return m
