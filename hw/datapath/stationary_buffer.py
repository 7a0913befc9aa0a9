"""Stationary buffer: the L3 weight tile, double-buffered, delivered per channel switch."""

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import AccelConfig, check_range
from hw.datapath.dpe import TAPS, WEIGHTS
from hw.datapath.repacker import byte_stream_layout

__all__ = ["StationaryBuffer"]


class StationaryBuffer(wiring.Component):
    """Holds weight tiles in two halves (ping-pong) of words of KP slices of 9 weights: word
    ``kg * channels + c`` holds kernels ``kg * KP ..`` of channel ``c`` (3x3) or of channel
    block ``c`` (1x1: nine channels, one weight each).

    A ``load`` command ``{kernels, channels, kernel_groups, pointwise}`` fills the next
    half once it is free, from ``write`` in DRAM order:

    * ``pointwise`` 0 (3x3, (K, C, 3, 3)): ``kernels * channels`` beats, kernel-major, the
      9 weights of one slice each, into lane ``k mod KP``;
    * ``pointwise`` 1 (1x1, (ceil(C / 9), K, 9)): ``channels * kernel_groups`` beats, block-major,
      each the ``KP x 9`` weights of one kernel group (lanes past ``kernels`` carry what the
      beat carries), into a whole word.

    A ``replay`` command ``{kernel_groups, channels}`` then sends the full half's words on
    ``weights`` in order, one KP x 9 set per (kernel group, channel), as the array uses
    them, and frees the half. Kernels past ``kernels`` in the last group are stale.

    ``write``: stream of ``byte_stream_layout(KP * 9)`` (a :class:`Repacker` with 9-byte
    rows, or ``T_K * 9``-byte rows for 1x1 kernels, makes it from DMA beats);
    ``weights``: stream of KP x 9 s8, as :class:`DPEArray` takes them.
    Throughput: one beat in (a slice, or a whole word for 1x1) and one word out per cycle.

    Latency: 2 cycles from a ``replay`` command's transfer to its first ``weights`` beat
    (its half loaded, ``weights`` ready): :attr:`latency`.
    """

    LATENCY = 2

    @property
    def latency(self):
        return self.LATENCY

    def __init__(self, *, kp, depth):
        check_range("kp", kp, *AccelConfig.LIMITS["kp"])
        check_range("depth", depth, 1, 1 << 20)
        self.kp, self.depth = kp, depth           # depth: KP x 9 words per half
        self.write_layout = byte_stream_layout(TAPS * kp)
        self.weights_layout = data.ArrayLayout(WEIGHTS, kp)
        dim = range(depth * kp + 1)
        self.load_layout = data.StructLayout({"kernels": dim, "channels": dim,
                                              "kernel_groups": dim, "pointwise": 1})
        self.replay_layout = data.StructLayout({"kernel_groups": dim, "channels": dim})
        super().__init__({
            "load": In(stream.Signature(self.load_layout)),
            "write": In(stream.Signature(self.write_layout)),
            "replay": In(stream.Signature(self.replay_layout)),
            "weights": Out(stream.Signature(self.weights_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        kp, depth = self.kp, self.depth
        slice_bits = TAPS * 8
        m.submodules.mem = mem = Memory(shape=unsigned(kp * slice_bits), depth=2 * depth, init=[])
        wp = mem.write_port(granularity=slice_bits)
        rp = mem.read_port(domain="sync")
        full = Signal(2)
        set_full = Signal(2)
        clear_full = Signal(2)

        # ---- load side ------------------------------------------------------------------
        # 3x3: slice (k, c) -> word (k // KP) * channels + c, lane k % KP.
        # 1x1: beat (c, kg) -> word kg * channels + c, all lanes.
        w_half = Signal()
        w_active = Signal()
        w_cmd = Signal(self.load_layout)
        w_lane = Signal(range(kp))
        w_group_base = Signal(range(2 * depth + 1))   # word of (k // KP, 0) / of (kg, c)
        w_chan = Signal.like(w_cmd.channels)
        w_kernel = Signal.like(w_cmd.kernels)          # 1x1: kernel group
        with m.If(~w_active):
            m.d.comb += self.load.ready.eq(~full.bit_select(w_half, 1))
            with m.If(self.load.valid & self.load.ready):
                p = self.load.payload
                m.d.sync += [w_cmd.eq(p), w_active.eq(1), w_lane.eq(0), w_chan.eq(0),
                             w_kernel.eq(0), w_group_base.eq(0)]
                with m.If((p.kernels == 0) | (p.channels == 0) | (p.kernel_groups == 0)):
                    m.d.sync += [w_active.eq(0), w_half.eq(~w_half)]
                    m.d.comb += set_full.eq(1 << w_half)

        write = self.write.valid & self.write.ready
        slice_data = self.write.payload.data.as_value()[:slice_bits]
        m.d.comb += self.write.ready.eq(w_active)
        with m.If(w_cmd.pointwise):
            m.d.comb += [wp.addr.eq(w_half * depth + w_group_base + w_chan),
                         wp.data.eq(self.write.payload.data),
                         wp.en.eq(Mux(write, (1 << kp) - 1, 0))]
            with m.If(write):
                m.d.sync += [w_kernel.eq(w_kernel + 1), w_group_base.eq(w_group_base + w_cmd.channels)]
                with m.If(w_kernel + 1 == w_cmd.kernel_groups):
                    m.d.sync += [w_kernel.eq(0), w_group_base.eq(0), w_chan.eq(w_chan + 1)]
                    with m.If(w_chan + 1 == w_cmd.channels):
                        m.d.sync += [w_active.eq(0), w_half.eq(~w_half)]
                        m.d.comb += set_full.eq(1 << w_half)
        with m.Else():
            m.d.comb += [wp.addr.eq(w_half * depth + w_group_base + w_chan),
                         wp.data.eq(Cat(*([slice_data] * kp))),
                         wp.en.eq(Mux(write, 1 << w_lane, 0))]
            with m.If(write):
                m.d.sync += w_chan.eq(w_chan + 1)
                with m.If(w_chan + 1 == w_cmd.channels):
                    m.d.sync += [w_chan.eq(0), w_kernel.eq(w_kernel + 1), w_lane.eq(w_lane + 1)]
                    with m.If(w_lane == kp - 1):
                        m.d.sync += [w_lane.eq(0), w_group_base.eq(w_group_base + w_cmd.channels)]
                    with m.If(w_kernel + 1 == w_cmd.kernels):
                        m.d.sync += [w_active.eq(0), w_half.eq(~w_half)]
                        m.d.comb += set_full.eq(1 << w_half)

        # ---- replay side: words 0 .. kernel_groups * channels - 1 in order --------------
        r_half = Signal()
        r_active = Signal()
        r_addr = Signal(range(2 * depth + 1))
        r_words = Signal(range(2 * depth + 1))
        advance = Signal()
        m.d.comb += advance.eq(~self.weights.valid | self.weights.ready)
        with m.If(~r_active):
            m.d.comb += self.replay.ready.eq(full.bit_select(r_half, 1))
            with m.If(self.replay.valid & self.replay.ready):
                p = self.replay.payload
                words = p.kernel_groups * p.channels
                m.d.sync += [r_active.eq(1), r_addr.eq(0), r_words.eq(words)]
                with m.If(words == 0):
                    m.d.sync += [r_active.eq(0), r_half.eq(~r_half)]
                    m.d.comb += clear_full.eq(1 << r_half)
        fire = Signal()
        m.d.comb += [fire.eq(r_active & advance), rp.addr.eq(r_half * depth + r_addr),
                     rp.en.eq(advance)]
        with m.If(fire):
            m.d.sync += r_addr.eq(r_addr + 1)
            with m.If(r_addr + 1 == r_words):
                m.d.sync += [r_active.eq(0), r_half.eq(~r_half)]
                m.d.comb += clear_full.eq(1 << r_half)
        weights_valid = Signal()
        with m.If(advance):
            m.d.sync += weights_valid.eq(fire)
        m.d.comb += [self.weights.valid.eq(weights_valid), self.weights.payload.eq(rp.data)]

        m.d.sync += full.eq((full | set_full) & ~clear_full)
        return m
