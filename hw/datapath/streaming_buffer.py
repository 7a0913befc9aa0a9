"""Streaming buffer: the L3 iAct tile, double-buffered, replayed once per kernel group."""

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["StreamingBuffer"]


class StreamingBuffer(wiring.Component):
    """Holds iAct tiles as row-aligned words in two halves (ping-pong).

    Loads and replays alternate between the halves. A ``load`` command ``{words}`` takes
    that many words from ``write`` into the next half, once the half is free; it is then
    full. A ``replay`` command ``{words, replays}`` streams the words of the next full
    half, in order, ``replays`` times on ``read``, then frees the half. So the next tile
    loads while the current one replays, and nothing is overwritten before it was used.

    ``write``: stream of words (``word_bytes`` u8); ``read``: the same layout.
    Throughput: one word per cycle on each side.

    Latency: 2 cycles from a ``replay`` command's transfer to its first ``read`` beat
    (its half loaded, ``read`` ready): :attr:`latency`.
    """

    LATENCY = 2

    @property
    def latency(self):
        return self.LATENCY

    def __init__(self, *, word_bytes, depth):
        if not 1 <= word_bytes <= 256:
            raise ValueError(f"word_bytes must be in [1, 256], got {word_bytes}")
        if not 2 <= depth <= 1 << 22:
            raise ValueError(f"depth must be in [2, {1 << 22}], got {depth}")
        self.word_bytes, self.depth = word_bytes, depth
        self.word_layout = data.ArrayLayout(unsigned(8), word_bytes)
        self.load_layout = data.StructLayout({"words": range(depth + 1)})
        self.replay_layout = data.StructLayout({"words": range(depth + 1), "replays": unsigned(16)})
        super().__init__({
            "load": In(stream.Signature(self.load_layout)),
            "write": In(stream.Signature(self.word_layout)),
            "replay": In(stream.Signature(self.replay_layout)),
            "read": Out(stream.Signature(self.word_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self.word_layout, depth=2 * self.depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port(domain="sync")
        full = Signal(2)                       # per half: loaded and not yet replayed

        # ---- load side -----------------------------------------------------------------
        w_half = Signal()
        w_active = Signal()
        w_addr = Signal(range(self.depth + 1))
        w_words = Signal(range(self.depth + 1))
        set_full = Signal(2)
        with m.If(~w_active):
            m.d.comb += self.load.ready.eq(~full.bit_select(w_half, 1))
            with m.If(self.load.valid & self.load.ready):
                m.d.sync += [w_active.eq(1), w_addr.eq(0), w_words.eq(self.load.payload.words)]
                with m.If(self.load.payload.words == 0):
                    m.d.sync += [w_active.eq(0), w_half.eq(~w_half)]
                    m.d.comb += set_full.eq(1 << w_half)
        m.d.comb += [
            self.write.ready.eq(w_active),
            wp.addr.eq((w_half * self.depth) + w_addr),
            wp.data.eq(self.write.payload),
            wp.en.eq(self.write.valid & self.write.ready),
        ]
        with m.If(self.write.valid & self.write.ready):
            m.d.sync += w_addr.eq(w_addr + 1)
            with m.If(w_addr + 1 == w_words):
                m.d.sync += [w_active.eq(0), w_half.eq(~w_half)]
                m.d.comb += set_full.eq(1 << w_half)

        # ---- replay side ---------------------------------------------------------------
        r_half = Signal()
        r_active = Signal()
        r_addr = Signal(range(self.depth + 1))
        r_words = Signal(range(self.depth + 1))
        r_left = Signal(16)                    # replays left after this one
        clear_full = Signal(2)
        advance = Signal()
        m.d.comb += advance.eq(~self.read.valid | self.read.ready)
        with m.If(~r_active):
            m.d.comb += self.replay.ready.eq(full.bit_select(r_half, 1))
            with m.If(self.replay.valid & self.replay.ready):
                p = self.replay.payload
                m.d.sync += [r_active.eq(1), r_addr.eq(0), r_words.eq(p.words),
                             r_left.eq(p.replays - 1)]
                with m.If((p.words == 0) | (p.replays == 0)):
                    m.d.sync += [r_active.eq(0), r_half.eq(~r_half)]
                    m.d.comb += clear_full.eq(1 << r_half)
        fire = Signal()
        m.d.comb += [
            fire.eq(r_active & advance),
            rp.addr.eq((r_half * self.depth) + r_addr),
            rp.en.eq(advance),
        ]
        with m.If(fire):
            m.d.sync += r_addr.eq(r_addr + 1)
            with m.If(r_addr + 1 == r_words):
                m.d.sync += [r_addr.eq(0), r_left.eq(r_left - 1)]
                with m.If(r_left == 0):
                    m.d.sync += [r_active.eq(0), r_half.eq(~r_half)]
                    m.d.comb += clear_full.eq(1 << r_half)
        read_valid = Signal()
        with m.If(advance):
            m.d.sync += read_valid.eq(fire)
        m.d.comb += [self.read.valid.eq(read_valid), self.read.payload.eq(rp.data)]

        m.d.sync += full.eq((full | set_full) & ~clear_full)
        return m
