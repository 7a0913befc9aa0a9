"""Byte-stream gearbox: packs a stream of partially filled words into row-aligned words."""

from amaranth import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Repacker", "byte_stream_layout", "row_command_layout"]


def byte_stream_layout(width_bytes):
    """``{data: width_bytes x u8, count, last}``: bytes ``0 .. count-1`` are valid."""
    return data.StructLayout({
        "data": data.ArrayLayout(unsigned(8), width_bytes),
        "count": range(width_bytes + 1),
        "last": 1,
    })


def row_command_layout(max_row):
    """``{rows, row_bytes}``: the next ``rows`` rows are ``row_bytes`` long."""
    return data.StructLayout({"rows": unsigned(32), "row_bytes": range(max_row + 1)})


class Repacker(wiring.Component):
    """Concatenates the valid bytes of ``i`` and cuts them into rows.

    Each ``cmd`` ``{rows, row_bytes}`` (``row_bytes`` >= 1) cuts the next ``rows`` rows of
    ``row_bytes`` bytes. Each row starts a new ``o`` word; every ``o`` word of a row is
    full but the row's last, which carries ``count`` valid bytes and ``last``. ``i.last``
    is not used: rows are counted in bytes, so a row may span input beats, an input beat
    may hold several rows, and bytes past a command's rows wait for the next command.

    ``i``: stream of ``byte_stream_layout(in_bytes)``; ``o``: ``byte_stream_layout(out_bytes)``.
    Throughput: one ``o`` word per cycle, and ``in_bytes`` per cycle in; no bubble between
    commands.

    Latency: 1 cycle from the transfer of the ``i`` beat that completes an ``o`` word to
    that word's transfer (its command accepted, ``o`` ready): :attr:`latency`.
    """

    LATENCY = 1

    @property
    def latency(self):
        return self.LATENCY

    def __init__(self, *, in_bytes, out_bytes, max_row=1 << 24):
        for name, value in (("in_bytes", in_bytes), ("out_bytes", out_bytes)):
            if not 1 <= value <= 1024:
                raise ValueError(f"{name} must be in [1, 1024], got {value}")
        self.in_bytes, self.out_bytes = in_bytes, out_bytes
        self.in_layout = byte_stream_layout(in_bytes)
        self.out_layout = byte_stream_layout(out_bytes)
        self.cmd_layout = row_command_layout(max_row)
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "i": In(stream.Signature(self.in_layout)),
            "o": Out(stream.Signature(self.out_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        out_bytes = self.out_bytes
        cap = self.in_bytes + out_bytes
        buf = Signal(8 * cap)
        cmd = Signal(self.cmd_layout)

        # Registers, each loaded with its next value (``nxt``), so that no comparison or
        # subtraction stands between them and the handshakes, which only select among
        # values computed beside them:
        # fill: bytes in buf; active: a command's rows are being cut; rows_left, one_row:
        # its rows not yet out, just one; left: the row's bytes not yet out; take: the next
        # o word's bytes (min(left, out_bytes)); ends_row: that word ends the row;
        # word_ready: buf holds it; fill_after: fill - take; rest, rest_take, rest_ends:
        # left - take and its take and ends_row (the row's next word); row_take, row_ends,
        # row_rest, row_rest_take, row_rest_ends: those of a whole row's first word and of
        # its second (a new row).
        length = cmd.row_bytes.shape()
        take_shape = range(out_bytes + 1)
        regs = {"fill": range(cap + 1), "active": 1, "rows_left": 32, "one_row": 1,
                "left": length, "take": take_shape, "ends_row": 1,
                "word_ready": 1, "fill_after": range(cap + 1),
                "rest": length, "rest_take": take_shape, "rest_ends": 1,
                "row_take": take_shape, "row_ends": 1,
                "row_rest": length, "row_rest_take": take_shape, "row_rest_ends": 1}
        r = {name: Signal(shape, name=name) for name, shape in regs.items()}
        nxt = {name: Signal(shape, name=f"{name}_next") for name, shape in regs.items()}
        for name in regs:
            if name not in ("word_ready", "fill_after"):
                m.d.comb += nxt[name].eq(r[name])       # held unless changed below
        m.d.comb += [
            nxt["word_ready"].eq(nxt["active"] & (nxt["fill"] >= nxt["take"])),
            nxt["fill_after"].eq(nxt["fill"] - nxt["take"]),
        ]
        m.d.sync += [r[name].eq(nxt[name]) for name in regs]

        def word_of(left_):
            """(take, ends_row) of a word with ``left_`` bytes of its row to go."""
            return Mux(left_ < out_bytes, left_, out_bytes), left_ <= out_bytes

        def following_word(left_):
            """(rest, take, ends_row) of the word after one with ``left_`` bytes to go:
            comparisons with constants beside one subtraction, none after it."""
            beyond = Signal(length)
            m.d.comb += beyond.eq(left_ - out_bytes)
            one_word = left_ <= out_bytes
            return (Mux(one_word, 0, beyond), Mux(one_word, 0, Mux(left_ < 2 * out_bytes, beyond, out_bytes)),
                    left_ <= 2 * out_bytes)

        # the row's word after the next one
        rest_rest, rest_rest_take, rest_rest_ends = following_word(r["rest"])

        m.d.comb += [
            self.o.valid.eq(r["word_ready"]),
            self.o.payload.data.eq(buf[:8 * out_bytes]),
            self.o.payload.count.eq(r["take"]),
            self.o.payload.last.eq(r["ends_row"]),
        ]
        fill, fill_after = r["fill"], r["fill_after"]
        out_fire = self.o.valid & self.o.ready
        kept = Mux(out_fire, fill_after, fill)
        m.d.comb += self.i.ready.eq(Mux(out_fire, fill_after + self.in_bytes <= cap,
                                        fill + self.in_bytes <= cap))
        in_fire = self.i.valid & self.i.ready

        shifted = Mux(out_fire, buf >> (r["take"] * 8), buf)
        # bytes past ``count`` are dropped, so the buffer above ``fill`` stays zero
        # the input's bytes below count, the others 0: a mask looked up by count (one LUT
        # per byte), not a comparison per byte
        byte_mask = Signal(self.in_bytes)
        m.d.comb += byte_mask.eq(Array(Const((1 << n) - 1, self.in_bytes)
                                       for n in range(self.in_bytes + 1))[self.i.payload.count])
        valid_bytes = Cat(Mux(byte_mask[b], self.i.payload.data[b], 0) for b in range(self.in_bytes))
        incoming = Mux(out_fire, valid_bytes << (fill_after * 8), valid_bytes << (fill * 8))
        with m.If(in_fire):
            m.d.sync += buf.eq(shifted | incoming)
            m.d.comb += nxt["fill"].eq(kept + self.i.payload.count)
        with m.Else():
            m.d.sync += buf.eq(shifted)
            m.d.comb += nxt["fill"].eq(kept)
        finishing = Signal()
        with m.If(out_fire):
            with m.If(r["ends_row"]):       # a new row: its first word, then its second
                m.d.comb += [nxt["left"].eq(cmd.row_bytes), nxt["take"].eq(r["row_take"]),
                             nxt["ends_row"].eq(r["row_ends"]), nxt["rest"].eq(r["row_rest"]),
                             nxt["rest_take"].eq(r["row_rest_take"]), nxt["rest_ends"].eq(r["row_rest_ends"]),
                             nxt["rows_left"].eq(r["rows_left"] - 1), nxt["one_row"].eq(r["rows_left"] == 2)]
                with m.If(r["one_row"]):
                    m.d.comb += [nxt["active"].eq(0), finishing.eq(1)]
            with m.Else():
                m.d.comb += [nxt["left"].eq(r["rest"]), nxt["take"].eq(r["rest_take"]),
                             nxt["ends_row"].eq(r["rest_ends"]), nxt["rest"].eq(rest_rest),
                             nxt["rest_take"].eq(rest_rest_take), nxt["rest_ends"].eq(rest_rest_ends)]
        # the next command loads as the last word of the current one leaves
        m.d.comb += self.cmd.ready.eq(~r["active"] | finishing)
        with m.If(self.cmd.valid & self.cmd.ready):
            p = self.cmd.payload
            row_take, row_ends = word_of(p.row_bytes)
            row_rest, row_rest_take, row_rest_ends = following_word(p.row_bytes)
            m.d.sync += cmd.eq(p)
            m.d.comb += [nxt["active"].eq(p.rows != 0), nxt["rows_left"].eq(p.rows),
                         nxt["one_row"].eq(p.rows == 1),
                         nxt["left"].eq(p.row_bytes), nxt["take"].eq(row_take), nxt["ends_row"].eq(row_ends),
                         nxt["rest"].eq(row_rest), nxt["rest_take"].eq(row_rest_take),
                         nxt["rest_ends"].eq(row_rest_ends),
                         nxt["row_take"].eq(row_take), nxt["row_ends"].eq(row_ends), nxt["row_rest"].eq(row_rest),
                         nxt["row_rest_take"].eq(row_rest_take), nxt["row_rest_ends"].eq(row_rest_ends)]
        return m
