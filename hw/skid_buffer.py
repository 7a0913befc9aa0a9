"""SkidBuffer: a register slice of a stream that cuts both its valid and its ready paths."""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Passes ``i`` to ``o`` through two registers: ``o.valid`` / ``o.payload`` come from a
    register and ``i.ready`` is a register (high while the second, skid entry is empty),
    so no combinational path crosses it in either direction.

    Throughput: one transfer per cycle. Latency: 1 cycle from an ``i`` transfer to the
    beat on ``o`` (:attr:`latency`).
    """

    LATENCY = 1

    @property
    def latency(self):
        return self.LATENCY

    def __init__(self, shape):
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        skid = Signal(self.shape)
        skid_valid = Signal()
        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(~self.o.valid | self.o.ready):       # the output register frees
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_valid):       # the output holds: the beat waits aside
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m
