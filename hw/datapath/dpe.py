"""One dot-product engine: a 3x3 window of u8 activations times 9 s8 weights per cycle."""

from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.datapath.pipeline import stalling_pipeline

__all__ = ["DPE", "TAPS", "PRODUCT_SHAPE", "RESULT_SHAPE", "dpe_input_layout", "adder_tree"]

TAPS = 9
PRODUCT_SHAPE = signed(17)            # u8 x s8
PARTIAL_SHAPE = signed(19)            # sum of 3 products
RESULT_SHAPE = signed(20)             # sum of 9 products: |sum| <= 9 * 255 * 128 < 2**19

ACTIVATIONS = data.ArrayLayout(unsigned(8), TAPS)
WEIGHTS = data.ArrayLayout(signed(8), TAPS)

dpe_input_layout = data.StructLayout({"activations": ACTIVATIONS, "weights": WEIGHTS})


def adder_tree(m, products, *, enable, prefix=""):
    """The DPE's last two pipeline stages, added to ``m``: three sums of three of the
    ``TAPS`` ``products``, then their sum, each registered while ``enable``. Returns the
    ``RESULT_SHAPE`` total (two cycles after ``products``)."""
    partials = [Signal(PARTIAL_SHAPE, name=f"{prefix}partial{g}") for g in range(3)]
    total = Signal(RESULT_SHAPE, name=f"{prefix}total")
    with m.If(enable):
        for g in range(3):
            m.d.sync += partials[g].eq(products[3 * g] + products[3 * g + 1] + products[3 * g + 2])
        m.d.sync += total.eq(partials[0] + partials[1] + partials[2])
    return total


class DPE(wiring.Component):
    """9 u8 x s8 products summed by a pipelined adder tree.

    Stages: 9 products, 3 sums of 3, final sum. Fully pipelined: one window per cycle.
    The whole pipeline stalls while ``o`` is valid and not ready.

    ``i``: stream of ``dpe_input_layout`` (activations, weights);
    ``o``: stream of ``RESULT_SHAPE`` (signed 20-bit dot product).
    """

    LATENCY = 3

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(dpe_input_layout)),
            "o": Out(stream.Signature(RESULT_SHAPE)),
        })

    @property
    def latency(self):
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()
        advance = stalling_pipeline(m, i=self.i, o=self.o, latency=self.LATENCY)
        products = [Signal(PRODUCT_SHAPE, name=f"product{t}") for t in range(TAPS)]
        with m.If(advance):
            for t in range(TAPS):
                m.d.sync += products[t].eq(self.i.payload.activations[t] * self.i.payload.weights[t])
        m.d.comb += self.o.payload.eq(adder_tree(m, products, enable=advance))
        return m
