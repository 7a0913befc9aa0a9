"""Stationary buffer: the L3 weight tile, double-buffered, delivered per channel switch."""

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import AccelConfig, check_range
from hw.datapath.dpe import TAPS, WEIGHTS
from hw.datapath.repacker import byte_stream_layout

__all__ = ["StationaryBuffer"]


class StationaryBuffer(wiring.Component):
    """Holds weight tiles in two halves (ping-pong) of words of KP slices of 9 weights: word
    ``kg * channels + c`` holds kernels ``kg * KP ..`` of unit ``c``: a channel (3x3: its 9
    taps), a channel block (1x1: nine channels, one weight each) or the tile itself
    (depthwise: one unit).

    A ``load`` command ``{kernels, channels, kernel_groups}`` fills the next half once it
    is free, from ``write`` in DRAM order (unit-major: 3x3 (C, K, 9), 1x1 (ceil(C / 9), K,
    9), depthwise (K, 9)): ``channels * kernel_groups`` beats, unit-major, each the ``KP x
    9`` weights of one kernel group (lanes past ``kernels`` carry what the beat carries),
    into a whole word.

    A ``replay`` command ``{kernel_groups, channels}`` then sends the full half's words on
    ``weights`` in order, one KP x 9 set per (kernel group, unit), as the array uses
    them, and frees the half. Kernels past ``kernels`` in the last group are stale.

    ``write``: stream of ``byte_stream_layout(KP * 9)`` (a :class:`Repacker` cutting
    ``T_K * 9``-byte rows, one per unit, makes it from DMA beats);
    ``weights``: stream of KP x 9 s8, as :class:`DPEArray` takes them.
    Throughput: one whole word in and one word out per cycle.

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
        self.load_layout = data.StructLayout({"kernels": dim, "channels": dim, "kernel_groups": dim})
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
        wp = mem.write_port()
        rp = mem.read_port(domain="sync")
        full = Signal(2)
        set_full = Signal(2)
        clear_full = Signal(2)

        # ---- load side: beat (c, kg) -> word kg * channels + c, all lanes -----------------
        w_half = Signal()
        w_active = Signal()
        w_cmd = Signal(self.load_layout)
        w_group_base = Signal(range(2 * depth + 1))   # word of (kg, 0)
        w_chan = Signal.like(w_cmd.channels)
        w_kernel = Signal.like(w_cmd.kernels)          # the kernel group
        # the last kernel group and channel, registered with the command
        w_last_kernel, w_last_chan = Signal.like(w_cmd.kernel_groups), Signal.like(w_cmd.channels)
        with m.If(~w_active):
            m.d.comb += self.load.ready.eq(~full.bit_select(w_half, 1))
            with m.If(self.load.valid & self.load.ready):
                p = self.load.payload
                m.d.sync += [w_cmd.eq(p), w_active.eq(1), w_chan.eq(0), w_kernel.eq(0),
                             w_group_base.eq(0), w_last_kernel.eq(p.kernel_groups - 1),
                             w_last_chan.eq(p.channels - 1)]
                with m.If((p.kernels == 0) | (p.channels == 0) | (p.kernel_groups == 0)):
                    m.d.sync += [w_active.eq(0), w_half.eq(~w_half)]
                    m.d.comb += set_full.eq(1 << w_half)

        write = self.write.valid & self.write.ready
        m.d.comb += [self.write.ready.eq(w_active),
                     wp.addr.eq(w_half * depth + w_group_base + w_chan),
                     wp.data.eq(self.write.payload.data),
                     wp.en.eq(write)]
        with m.If(write):
            m.d.sync += [w_kernel.eq(w_kernel + 1), w_group_base.eq(w_group_base + w_cmd.channels)]
            with m.If(w_kernel == w_last_kernel):
                m.d.sync += [w_kernel.eq(0), w_group_base.eq(0), w_chan.eq(w_chan + 1)]
                with m.If(w_chan == w_last_chan):
                    m.d.sync += [w_active.eq(0), w_half.eq(~w_half)]
                    m.d.comb += set_full.eq(1 << w_half)

        # ---- replay side: words 0 .. kernel_groups * channels - 1 in order --------------
        r_half = Signal()
        r_active = Signal()
        r_addr = Signal(range(2 * depth + 1))
        r_last = Signal(range(2 * depth + 1))          # the last word's r_addr
        advance = Signal()
        m.d.comb += advance.eq(~self.weights.valid | self.weights.ready)
        with m.If(~r_active):
            m.d.comb += self.replay.ready.eq(full.bit_select(r_half, 1))
            with m.If(self.replay.valid & self.replay.ready):
                p = self.replay.payload
                words = p.kernel_groups * p.channels
                m.d.sync += [r_active.eq(1), r_addr.eq(0), r_last.eq(words - 1)]
                with m.If(words == 0):
                    m.d.sync += [r_active.eq(0), r_half.eq(~r_half)]
                    m.d.comb += clear_full.eq(1 << r_half)
        fire = Signal()
        m.d.comb += [fire.eq(r_active & advance), rp.addr.eq(r_half * depth + r_addr),
                     rp.en.eq(advance)]
        with m.If(fire):
            m.d.sync += r_addr.eq(r_addr + 1)
            with m.If(r_addr == r_last):
                m.d.sync += [r_active.eq(0), r_half.eq(~r_half)]
                m.d.comb += clear_full.eq(1 << r_half)
        weights_valid = Signal()
        with m.If(advance):
            m.d.sync += weights_valid.eq(fire)
        m.d.comb += [self.weights.valid.eq(weights_valid), self.weights.payload.eq(rp.data)]

        m.d.sync += full.eq((full | set_full) & ~clear_full)
        return m
