"""ResidualAdd: a quantized residual addition fused into a layer's output stream."""

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.datapath.repacker import byte_stream_layout

__all__ = ["ResidualAdd", "add_params_layout", "ADD_MULTIPLIER_BITS"]

# QNNPACK's add multipliers are below 2**22 (host.golden.ops.add)
ADD_MULTIPLIER_BITS = 22


def add_params_layout():
    """The add's parameters, fixed for a layer: ``enable``, the multipliers ``ma`` (the
    layer's output) and ``mb`` (the residual), the right ``shift`` (13 .. 31), the zero
    points ``za``, ``zb``, ``zo`` and the clamp's lower bound ``lo`` (``zo`` for add+ReLU)."""
    return data.StructLayout({"enable": 1, "ma": ADD_MULTIPLIER_BITS, "mb": ADD_MULTIPLIER_BITS,
                              "shift": 5, "za": 8, "zb": 8, "zo": 8, "lo": 8})


class ResidualAdd(wiring.Component):
    """Adds the residual bytes ``residual`` to the layer's requantized output bytes ``i``,
    lane by lane, with QNNPACK's fixed-point add (``host.golden.ops.add``):
    ``acc = ma * (a - za) + mb * (b - zb)``, ``y = acc >> shift`` rounded half away from
    zero, ``q = clamp(y + zo, lo, 255)``.

    ``i`` and ``residual``: beat streams (:func:`byte_stream_layout`) of the same bytes'
    positions, beat for beat (each write command's bytes start a beat on both); ``o``:
    the sums, with ``i``'s ``count`` and ``last``. ``params`` (:func:`add_params_layout`)
    is held for a layer; with ``enable`` low, ``i`` passes to ``o`` unchanged and
    ``residual`` is not read.

    Latency: :attr:`latency` cycles from a beat pair to its sum (five registered stages:
    differences, products, sum, shift and rounding, offset and clamp); one beat per cycle.
    """

    LATENCY = 5

    @property
    def latency(self):
        return self.LATENCY

    def __init__(self, *, lanes):
        if not 1 <= lanes <= 128:
            raise ValueError(f"lanes must be in [1, 128], got {lanes}")
        self.lanes = lanes
        layout = byte_stream_layout(lanes)
        super().__init__({
            "params": In(add_params_layout()),
            "i": In(stream.Signature(layout)),
            "residual": In(stream.Signature(layout)),
            "o": Out(stream.Signature(layout)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        lanes = self.lanes
        meta = data.StructLayout({"count": range(lanes + 1), "last": 1})

        # pipeline: every stage advances when the next one can take its contents
        valid = [Signal(name=f"valid{s}") for s in range(self.LATENCY)]
        info = [Signal(meta, name=f"meta{s}") for s in range(self.LATENCY)]
        advance = ~valid[-1] | self.o.ready
        take = p.enable & self.i.valid & self.residual.valid & advance
        with m.If(advance):
            m.d.sync += [valid[0].eq(take), info[0].count.eq(self.i.payload.count),
                         info[0].last.eq(self.i.payload.last)]
            for s in range(1, self.LATENCY):
                m.d.sync += [valid[s].eq(valid[s - 1]), info[s].eq(info[s - 1])]

        shift = p.shift
        mask = Signal(32)               # registered: the parameters hold for a layer
        m.d.sync += mask.eq((1 << shift) - 1)
        out = Signal(data.ArrayLayout(unsigned(8), lanes))
        for lane in range(lanes):
            a, b = self.i.payload.data[lane], self.residual.payload.data[lane]
            da, db = Signal(signed(10)), Signal(signed(10))
            pa, pb = Signal(signed(32)), Signal(signed(32))
            acc = Signal(signed(33))
            shifted, rounding = Signal(signed(33)), Signal()
            q = Signal(8)
            with m.If(advance):
                m.d.sync += [da.eq(a - p.za), db.eq(b - p.zb),
                             pa.eq(p.ma * da), pb.eq(p.mb * db),
                             acc.eq(pa + pb),
                             shifted.eq(acc >> shift),
                             rounding.eq(((acc[:32] & mask) - (acc < 0)).as_signed() > (mask >> 1))]
                y = Signal(signed(34))
                m.d.comb += y.eq(shifted + rounding + p.zo)
                m.d.sync += q.eq(Mux(y > 255, 255, Mux(y < p.lo, p.lo, y[:8])))
            m.d.comb += out[lane].eq(q)

        with m.If(p.enable):
            m.d.comb += [
                self.i.ready.eq(take), self.residual.ready.eq(take),
                self.o.valid.eq(valid[-1]), self.o.payload.data.eq(out),
                self.o.payload.count.eq(info[-1].count), self.o.payload.last.eq(info[-1].last),
            ]
        with m.Else():
            m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload),
                         self.i.ready.eq(self.o.ready)]
        return m
