"""Two DPEs that share their weights, two u8 x s8 products per multiplication: one DSP48E2
per tap instead of two (``AccelConfig.dsp_packing``; the scheme of AMD WP486).

Tap ``t`` multiplies the packed activations once by the weight ``w``:
``P = (a_hi * 2**PACK_SHIFT + a_lo) * w``, with ``a_lo`` window 0's activation and ``a_hi``
window 1's. The packed operand is a_lo, 10 zero bits and a_hi side by side, below 2**26
(the DSP48E2's 27-bit signed A port; the s8 weight takes the 18-bit B port). ``P[0:18]``,
read as signed, is ``a_lo * w`` (in [-32640, 32385], so it fits) and ``a_hi * w`` is
``(P >> 18) + P[17]``: the high field less the borrow of a negative low product, given
back. The multiplier adds ``ROUNDING`` = 2**17 to P, which turns that split into wiring:
``Q = P + 2**17`` has ``Q >> 18 = (P >> 18) + P[17] = a_hi * w`` and ``Q[0:18] - 2**17``
(bit 17 inverted, read as signed) ``= a_lo * w`` (:func:`packed_product`, :func:`split`;
``tests/test_dsp_packing.py`` checks them on every operand triple). Each product is split
before it is summed, so each window's adder tree is the DPE's own and the sums are the
unpacked DPEs' bit for bit.
"""

from amaranth import C, Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.datapath.dpe import ACTIVATIONS, PRODUCT_SHAPE, RESULT_SHAPE, TAPS, WEIGHTS, adder_tree
from hw.datapath.pipeline import stalling_pipeline

__all__ = ["DPEPair", "PACK_SHIFT", "PACKED_SHAPE", "PACKED_PRODUCT_SHAPE", "ROUNDING",
           "pair_input_layout", "pack", "packed_product", "split"]

ACTIVATION_BITS = 8
PACK_SHIFT = 18                                         # a_lo's field: a signed 18-bit product
PACKED_SHAPE = unsigned(PACK_SHIFT + ACTIVATION_BITS)   # 26 bits: the 27-bit signed A port
ROUNDING = 1 << (PACK_SHIFT - 1)                        # added to each packed product
# x s8, + 2**17: |Q| < (255 * 2**18 + 255) * 128 + 2**17 < 2**33, 34 of the DSP's 48 P bits
PACKED_PRODUCT_SHAPE = signed(PACKED_SHAPE.width + 8)

pair_input_layout = data.StructLayout({"activations": data.ArrayLayout(ACTIVATIONS, 2),
                                       "weights": WEIGHTS})


def pack(a_hi, a_lo):
    """The multiplier's packed operand: ``a_hi * 2**PACK_SHIFT + a_lo`` (ints or numpy arrays)."""
    return (a_hi << PACK_SHIFT) | a_lo


def packed_product(a_hi, a_lo, w):
    """What each tap's multiplier computes: ``pack(a_hi, a_lo) * w + ROUNDING``."""
    return pack(a_hi, a_lo) * w + ROUNDING


def split(q):
    """``(hi, lo)`` of a :func:`packed_product` ``q``, sliced as the hardware slices it:
    ``hi = q >> PACK_SHIFT`` (the high bits, signed), ``lo = q[0:18]`` with bit 17 inverted,
    read as signed; they are ``(a_hi * w, a_lo * w)``. Ints or numpy integer arrays."""
    hi = q >> PACK_SHIFT
    low_field = (q & ((1 << PACK_SHIFT) - 1)) ^ ROUNDING         # q[0:18], bit 17 inverted
    lo = (low_field ^ ROUNDING) - ROUNDING                        # read as signed 18 bits
    return hi, lo


class DPEPair(wiring.Component):
    """Two :class:`~hw.datapath.dpe.DPE` on one set of weights, one packed multiplication
    per tap (9 DSP48E2 for 18 products).

    Stages: 9 packed products, 3 + 3 sums of 3 (the products split on the way in), the two
    final sums. Fully pipelined: a window pair per cycle; the whole pipeline stalls while
    ``o`` is valid and not ready.

    ``i``: stream of ``pair_input_layout``: ``activations[0]`` and ``activations[1]``, two
    windows of 9 u8 (window 0 in the packed operand's low field), ``weights``: 9 s8;
    ``o``: stream of two ``RESULT_SHAPE`` dot products, ``o.payload[w]`` window ``w``'s.
    """

    LATENCY = 3

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(pair_input_layout)),
            "o": Out(stream.Signature(data.ArrayLayout(RESULT_SHAPE, 2))),
        })

    @property
    def latency(self):
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()
        advance = stalling_pipeline(m, i=self.i, o=self.o, latency=self.LATENCY)
        packed = [Signal(PACKED_PRODUCT_SHAPE, name=f"packed_product{t}") for t in range(TAPS)]
        lo = [Signal(PRODUCT_SHAPE, name=f"lo_product{t}") for t in range(TAPS)]
        hi = [Signal(PRODUCT_SHAPE, name=f"hi_product{t}") for t in range(TAPS)]
        acts = self.i.payload.activations
        with m.If(advance):
            for t in range(TAPS):
                operand = Cat(acts[0][t], C(0, PACK_SHIFT - ACTIVATION_BITS), acts[1][t])
                m.d.sync += packed[t].eq(operand * self.i.payload.weights[t] + ROUNDING)
        for t in range(TAPS):
            q = packed[t]
            m.d.comb += [lo[t].eq(Cat(q[:PACK_SHIFT - 1], ~q[PACK_SHIFT - 1]).as_signed()),
                         hi[t].eq(q[PACK_SHIFT:].as_signed())]
        totals = [adder_tree(m, lo, enable=advance, prefix="lo_"),
                  adder_tree(m, hi, enable=advance, prefix="hi_")]

        m.d.comb += [self.o.payload[0].eq(totals[0]), self.o.payload[1].eq(totals[1])]
        return m
