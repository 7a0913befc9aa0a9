"""Shared parts of the DMA engines: command and beat layouts, the splitter of commands into
legal INCR bursts (at most 256 beats, never across 4 KiB), and the soft-resettable clock
domain the engines run in."""

from amaranth import Cat, ClockDomain, ClockSignal, Const, ResetSignal, Signal
from amaranth.lib import data

from hw.config import check_power_of_two, check_range

__all__ = ["MAX_BURST_BEATS", "LENGTH_WIDTH", "cmd_layout", "beat_layout", "check_widths",
           "BurstSplitter", "core_domain"]

MAX_BURST_BEATS = 256
LENGTH_WIDTH = 32


def cmd_layout(addr_width):
    """DMA command: byte address and byte length (>= 1)."""
    return data.StructLayout({"addr": addr_width, "length": LENGTH_WIDTH})


def beat_layout(data_width):
    """Packed data beat: ``count`` valid bytes (0 .. count-1), ``last`` of the command."""
    return data.StructLayout({"data": data_width, "count": range(data_width // 8 + 1), "last": 1})


def check_widths(data_width, addr_width, outstanding, name):
    check_power_of_two("data_width", data_width, 32, 1024)
    check_range("addr_width", addr_width, 12, 64)
    check_range(name, outstanding, 1, 64)


class BurstSplitter:
    """Shared AR/AW issue logic: splits the current command into legal INCR bursts.

    ``load`` (driven by the owner) moves the next burst into the registered address channel.
    ``blen`` and ``last_burst`` (the next burst's beats, and whether it ends the command)
    are registers, loaded with ``cur`` and ``words_left``.
    """

    def __init__(self, m, dom, cmd, lanes, shift, addr_width):
        self.active = Signal()
        self.cur = Signal(addr_width)                       # word-aligned byte address
        self.words_left = Signal(LENGTH_WIDTH + 1)
        self.blen = Signal(range(MAX_BURST_BEATS + 1))      # beats of the next burst
        self.last_burst = Signal()
        self.load = Signal()
        self.accept = Signal()
        self.words = Signal(LENGTH_WIDTH + 1)               # words of the command on cmd
        self.offset = Signal(shift if shift else 1)
        m.d.comb += [
            self.offset.eq(cmd.payload.addr[0:shift]),
            self.words.eq((cmd.payload.addr[0:shift] + cmd.payload.length + (lanes - 1)) >> shift),
        ]

        # the next burst, for each way cur and words_left may change, computed beside the
        # handshakes (which only select among them): up to the 4 KiB boundary,
        # MAX_BURST_BEATS, the command's end
        def next_burst(cur, words_left, name):
            to_boundary = Signal(range(4096 // lanes + 1), name=f"{name}_to_boundary")
            blen = Signal.like(self.blen, name=f"{name}_blen")
            m.d.comb += [to_boundary.eq((4096 - cur[0:12]) >> shift), blen.eq(MAX_BURST_BEATS)]
            with m.If(to_boundary < MAX_BURST_BEATS):
                m.d.comb += blen.eq(to_boundary)
            with m.If((words_left < MAX_BURST_BEATS) & (words_left < to_boundary)):
                m.d.comb += blen.eq(words_left)
            return blen, words_left == blen

        loaded_cur = Signal.like(self.cur)
        loaded_words = Signal.like(self.words_left)
        accepted_cur = Signal.like(self.cur)
        m.d.comb += [loaded_cur.eq(self.cur + (self.blen << shift)),
                     loaded_words.eq(self.words_left - self.blen),
                     accepted_cur.eq(Cat(Const(0, shift), cmd.payload.addr[shift:]))]
        loaded_blen, loaded_last = next_burst(loaded_cur, loaded_words, "loaded")
        accepted_blen, accepted_last = next_burst(accepted_cur, self.words, "accepted")
        with m.If(self.load):
            m.d[dom] += [self.cur.eq(loaded_cur), self.words_left.eq(loaded_words),
                         self.blen.eq(loaded_blen), self.last_burst.eq(loaded_last)]
            with m.If(self.last_burst):
                m.d[dom] += self.active.eq(0)
        with m.If(self.accept):
            m.d[dom] += [self.active.eq(1), self.cur.eq(accepted_cur), self.words_left.eq(self.words),
                         self.blen.eq(accepted_blen), self.last_burst.eq(accepted_last)]


def core_domain(m, srst):
    """A local clock domain whose reset is the ``sync`` reset or the soft reset."""
    m.domains.core = cd = ClockDomain("core", local=True)
    m.d.comb += [cd.clk.eq(ClockSignal("sync")), cd.rst.eq(ResetSignal("sync") | srst)]
    return "core"


