"""Byte-stream gearbox: packs a stream of partially filled words into row-aligned words."""

from amaranth import Cat, Module, Mux, Signal, unsigned
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
        cap = self.in_bytes + self.out_bytes
        buf = Signal(8 * cap)
        fill = Signal(range(cap + 1))
        cmd = Signal(self.cmd_layout)
        active = Signal()
        rows_left = Signal(32)
        # the row's bytes not yet out, the next o word's bytes and whether it ends the row:
        # registers, loaded with each word out and each command
        left = Signal.like(cmd.row_bytes)
        take = Signal(range(self.out_bytes + 1))
        ends_row = Signal()

        def load_left(value):
            m.d.sync += [left.eq(value), take.eq(Mux(value < self.out_bytes, value, self.out_bytes)),
                         ends_row.eq(value <= self.out_bytes)]

        m.d.comb += [
            self.o.valid.eq(active & (fill >= take)),
            self.o.payload.data.eq(buf[:8 * self.out_bytes]),
            self.o.payload.count.eq(take),
            self.o.payload.last.eq(ends_row),
        ]
        out_fire = self.o.valid & self.o.ready
        # what stays of the buffer, with and without a word out: both ready before o.ready
        kept_after_out = Signal(range(cap + 1))
        m.d.comb += kept_after_out.eq(fill - take)
        kept = Mux(out_fire, kept_after_out, fill)
        m.d.comb += self.i.ready.eq(Mux(out_fire, kept_after_out + self.in_bytes <= cap,
                                        fill + self.in_bytes <= cap))
        in_fire = self.i.valid & self.i.ready

        shifted = Mux(out_fire, buf >> (take * 8), buf)
        # bytes past ``count`` are dropped, so the buffer above ``fill`` stays zero
        valid_bytes = Cat(Mux(b < self.i.payload.count, self.i.payload.data[b], 0)
                          for b in range(self.in_bytes))
        incoming = Mux(out_fire, valid_bytes << (kept_after_out * 8), valid_bytes << (fill * 8))
        with m.If(in_fire):
            m.d.sync += [buf.eq(shifted | incoming), fill.eq(kept + self.i.payload.count)]
        with m.Else():
            m.d.sync += [buf.eq(shifted), fill.eq(kept)]
        finishing = Signal()
        with m.If(out_fire):
            rest = left - take
            load_left(Mux(rest == 0, cmd.row_bytes, rest))
            with m.If(ends_row):
                m.d.sync += rows_left.eq(rows_left - 1)
                with m.If(rows_left == 1):
                    m.d.sync += active.eq(0)
                    m.d.comb += finishing.eq(1)
        # the next command loads as the last word of the current one leaves
        m.d.comb += self.cmd.ready.eq(~active | finishing)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [cmd.eq(self.cmd.payload), rows_left.eq(self.cmd.payload.rows),
                         active.eq(self.cmd.payload.rows != 0)]
            load_left(self.cmd.payload.row_bytes)
        return m
