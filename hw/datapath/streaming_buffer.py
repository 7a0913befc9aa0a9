"""Streaming buffer: the L3 iAct tile, double-buffered, replayed once per kernel group."""

from amaranth import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import CHANNEL_BLOCK, check_range

__all__ = ["StreamingBuffer"]


class StreamingBuffer(wiring.Component):
    """Holds iAct tiles in two halves (ping-pong) of ``depth`` words; a word has
    ``CHANNEL_BLOCK`` (9) lanes of one row word (``word_bytes`` u8) each.

    A ``load`` command ``{words, block_words, block_lanes}`` takes ``words`` row words from
    ``write`` into the next half, once the half is free; it is then full. Runs of
    ``block_words`` row words fill one lane each, ``L = block_lanes`` (at most 9) runs one
    block of ``block_words`` words: row word ``n`` goes to lane ``(n // block_words) % L``
    of word ``(n // (L * block_words)) * block_words + n % block_words``. So with
    ``block_words`` 1 and ``L`` 9 row words fill the lanes in order, and with
    ``block_words`` one channel's tile, channels ``Lb .. Lb + L - 1`` share the words of
    block ``b`` (a 1x1 layer: L = 9; a depthwise layer: L = KP).

    A ``replay`` command ``{words, replays, pointwise, blocks, rows, row_words, row_step,
    block_words}`` streams the next full half ``replays`` times on ``read``, then frees it:

    * ``pointwise`` 0: its ``words`` row words in load order (``block_words`` as loaded,
      ``block_lanes`` 9), one per beat, in lane 0 of ``read``;
    * ``pointwise`` 1: for block ``b < blocks``, row ``r < rows``, word ``w < row_words``:
      word ``b * block_words + r * row_step + w``, all nine lanes (a row of a block's
      channels: 1x1 and depthwise layers).

    So the next tile loads while the current one replays, and nothing is overwritten
    before it was used.

    ``write``: stream of row words; ``read``: stream of 9 row words.
    Throughput: one word per cycle on each side.

    Latency: 2 cycles from a ``replay`` command's transfer to its first ``read`` beat
    (its half loaded, ``read`` ready): :attr:`latency`.
    """

    LATENCY = 2

    @property
    def latency(self):
        return self.LATENCY

    def __init__(self, *, word_bytes, depth, max_rows=(1 << 16) - 1):
        check_range("word_bytes", word_bytes, 1, 256)
        check_range("depth", depth, 1, 1 << 22)
        check_range("max_rows", max_rows, 1, (1 << 16) - 1)
        self.word_bytes, self.depth = word_bytes, depth
        self.lanes = CHANNEL_BLOCK
        self.word_layout = data.ArrayLayout(unsigned(8), word_bytes)
        self.read_layout = data.ArrayLayout(self.word_layout, self.lanes)
        words = range(self.lanes * depth + 1)
        self.load_layout = data.StructLayout({"words": words, "block_words": range(depth + 1),
                                              "block_lanes": range(self.lanes + 1)})
        self.replay_layout = data.StructLayout({
            "words": words, "replays": unsigned(16), "pointwise": 1,
            "blocks": range(depth + 1), "rows": range(max_rows + 1), "row_words": range(depth + 1),
            "row_step": range(2 * depth + 1), "block_words": range(depth + 1)})
        super().__init__({
            "load": In(stream.Signature(self.load_layout)),
            "write": In(stream.Signature(self.word_layout)),
            "replay": In(stream.Signature(self.replay_layout)),
            "read": Out(stream.Signature(self.read_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        depth, lanes = self.depth, self.lanes
        word_bits = self.word_bytes * 8
        m.submodules.mem = mem = Memory(shape=unsigned(self.read_layout.size), depth=2 * depth, init=[])
        wp = mem.write_port(granularity=word_bits)
        rp = mem.read_port(domain="sync")
        full = Signal(2)                       # per half: loaded and not yet replayed
        addr = range(2 * depth + 1)

        # ---- load side -----------------------------------------------------------------
        w_half = Signal()
        w_active = Signal()
        w_cmd = Signal(self.load_layout)
        w_n = Signal.like(w_cmd.words)
        w_off, w_base = Signal(addr), Signal(addr)
        w_lane = Signal(range(lanes))
        set_full = Signal(2)
        # each counter's last value, registered with the command: equalities, no adders
        w_ends = {name: Signal.like(getattr(w_cmd, name), name=f"w_end_{name}")
                  for name in ("words", "block_words", "block_lanes")}
        with m.If(~w_active):
            m.d.comb += self.load.ready.eq(~full.bit_select(w_half, 1))
            with m.If(self.load.valid & self.load.ready):
                m.d.sync += [w_active.eq(1), w_cmd.eq(self.load.payload), w_n.eq(0), w_off.eq(0),
                             w_base.eq(0), w_lane.eq(0),
                             *(end.eq(getattr(self.load.payload, name) - 1) for name, end in w_ends.items())]
                with m.If((self.load.payload.words == 0) | (self.load.payload.block_words == 0) |
                          (self.load.payload.block_lanes == 0)):
                    m.d.sync += [w_active.eq(0), w_half.eq(~w_half)]
                    m.d.comb += set_full.eq(1 << w_half)
        write = self.write.valid & self.write.ready
        m.d.comb += [
            self.write.ready.eq(w_active),
            wp.addr.eq(w_half * depth + w_base + w_off),
            wp.data.eq(Cat(*([self.write.payload] * lanes))),
            wp.en.eq(Mux(write, 1 << w_lane, 0)),
        ]
        with m.If(write):
            m.d.sync += [w_n.eq(w_n + 1), w_off.eq(w_off + 1)]
            with m.If(w_off == w_ends["block_words"]):
                m.d.sync += [w_off.eq(0), w_lane.eq(w_lane + 1)]
                with m.If(w_lane >= w_ends["block_lanes"]):
                    m.d.sync += [w_lane.eq(0), w_base.eq(w_base + w_cmd.block_words)]
            with m.If(w_n == w_ends["words"]):
                m.d.sync += [w_active.eq(0), w_half.eq(~w_half)]
                m.d.comb += set_full.eq(1 << w_half)

        # ---- replay side ---------------------------------------------------------------
        r_half = Signal()
        r_active = Signal()
        r_cmd = Signal(self.replay_layout)
        r_left = Signal(16)                    # replays left after this one
        r_n = Signal.like(r_cmd.words)         # lane order: row words of this pass so far
        r_lane = Signal(range(lanes))
        r_off = Signal(addr)                   # word within a lane's run / within a row
        r_base = Signal(addr)                  # first word of the block / of the row
        r_row = Signal.like(r_cmd.rows)
        r_block = Signal.like(r_cmd.blocks)
        r_block_base = Signal(addr)
        clear_full = Signal(2)
        r_ends = {name: Signal.like(getattr(r_cmd, name), name=f"r_end_{name}")
                  for name in ("words", "row_words", "rows", "blocks", "block_words")}
        advance = Signal()
        m.d.comb += advance.eq(~self.read.valid | self.read.ready)

        def restart():
            return [r_n.eq(0), r_lane.eq(0), r_off.eq(0), r_base.eq(0), r_row.eq(0),
                    r_block.eq(0), r_block_base.eq(0)]

        with m.If(~r_active):
            m.d.comb += self.replay.ready.eq(full.bit_select(r_half, 1))
            with m.If(self.replay.valid & self.replay.ready):
                p = self.replay.payload
                m.d.sync += [r_active.eq(1), r_cmd.eq(p), r_left.eq(p.replays - 1), *restart(),
                             *(end.eq(getattr(p, name) - 1) for name, end in r_ends.items())]
                empty = Mux(p.pointwise, (p.blocks == 0) | (p.rows == 0) | (p.row_words == 0),
                            (p.words == 0) | (p.block_words == 0))
                with m.If(empty | (p.replays == 0)):
                    m.d.sync += [r_active.eq(0), r_half.eq(~r_half)]
                    m.d.comb += clear_full.eq(1 << r_half)
        fire = Signal()
        m.d.comb += [
            fire.eq(r_active & advance),
            rp.addr.eq(r_half * depth + r_base + r_off),
            rp.en.eq(advance),
        ]
        pass_end = Signal()
        with m.If(fire):
            with m.If(r_cmd.pointwise):
                m.d.sync += r_off.eq(r_off + 1)
                with m.If(r_off == r_ends["row_words"]):
                    m.d.sync += [r_off.eq(0), r_row.eq(r_row + 1), r_base.eq(r_base + r_cmd.row_step)]
                    with m.If(r_row == r_ends["rows"]):
                        m.d.sync += [r_row.eq(0), r_block.eq(r_block + 1),
                                     r_block_base.eq(r_block_base + r_cmd.block_words),
                                     r_base.eq(r_block_base + r_cmd.block_words)]
                        m.d.comb += pass_end.eq(r_block == r_ends["blocks"])
            with m.Else():
                m.d.sync += [r_n.eq(r_n + 1), r_off.eq(r_off + 1)]
                with m.If(r_off == r_ends["block_words"]):
                    m.d.sync += [r_off.eq(0), r_lane.eq(r_lane + 1)]
                    with m.If(r_lane == lanes - 1):
                        m.d.sync += [r_lane.eq(0), r_base.eq(r_base + r_cmd.block_words)]
                m.d.comb += pass_end.eq(r_n == r_ends["words"])
            with m.If(pass_end):
                m.d.sync += [r_left.eq(r_left - 1), *restart()]
                with m.If(r_left == 0):
                    m.d.sync += [r_active.eq(0), r_half.eq(~r_half)]
                    m.d.comb += clear_full.eq(1 << r_half)
        read_valid = Signal()
        read_lane = Signal(range(lanes))
        read_pointwise = Signal()
        with m.If(advance):
            m.d.sync += [read_valid.eq(fire), read_lane.eq(r_lane), read_pointwise.eq(r_cmd.pointwise)]
        stored = data.View(self.read_layout, rp.data)
        row_words = Array(stored[lane] for lane in range(lanes))
        m.d.comb += [
            self.read.valid.eq(read_valid),
            self.read.payload.eq(stored),
            self.read.payload[0].eq(Mux(read_pointwise, stored[0], row_words[read_lane])),
        ]

        m.d.sync += full.eq((full | set_full) & ~clear_full)
        return m
