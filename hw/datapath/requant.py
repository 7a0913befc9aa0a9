"""float32-exact requantizer: int32 accumulator -> u8, as PyTorch's qnnpack computes it."""

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.arith import leading_zeros
from hw.datapath.pipeline import stalling_pipeline

__all__ = ["Requantizer", "requant_input_layout"]

requant_input_layout = data.StructLayout({
    "acc": signed(32),             # accumulator without bias
    "bias": signed(32),            # bias_q of the output channel
    "multiplier": unsigned(32),    # IEEE-754 float32 bits of M, positive and normal
    "zero_point": unsigned(8),
    "lo": unsigned(8),
    "hi": unsigned(8),
})

table_write_layout = data.StructLayout({"addr": unsigned(8), "data": unsigned(8)})


def _round_half_even(value, guard, sticky):
    """1 when value must be rounded up under round-half-to-even."""
    return guard & (sticky | value[0])


class Requantizer(wiring.Component):
    """Requantizes one int32 accumulator per cycle, bit-exact with the golden model.

    0. ``acc + bias`` (int32, wrapping),
    1. ``a = f32(acc + bias)`` (round half to even),
    2. ``p = f32(a * M)`` (round half to even),
    3. ``q = clamp(rne_int(p) + zero_point, lo, hi)``, saturating when ``|p| >= 2**31``,
    4. ``out = table[q]``, a 256-entry activation table (identity after reset).

    ``i``: stream of ``requant_input_layout``; ``o``: stream of u8.
    ``table``: stream of ``{addr, data}`` writes into the table, always ready.
    Latency: 12 cycles, no stage with more than one wide addition, shift or count. The pipeline
    stalls while ``o`` is valid and not ready.
    """

    LATENCY = 12

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(requant_input_layout)),
            "o": Out(stream.Signature(unsigned(8))),
            "table": In(stream.Signature(table_write_layout)),
        })

    @property
    def latency(self):
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()
        advance = stalling_pipeline(m, i=self.i, o=self.o, latency=self.LATENCY)

        def stage(shape, value, name):
            reg = Signal(shape, name=name)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            return reg

        def delay(value, width, stages, name):
            for s in range(stages):
                value = stage(width, value, f"{name}{s + 1}")
            return value

        inp = self.i.payload
        # Stage 0: bias.
        acc = stage(32, inp.acc + inp.bias, "acc0")
        mult0 = stage(32, inp.multiplier, "mult0")
        zp0, lo0, hi0 = (stage(8, field, name) for field, name in
                         ((inp.zero_point, "zp0"), (inp.lo, "lo0"), (inp.hi, "hi0")))

        # Stage 1: sign and magnitude of acc; then its leading-zero count.
        sign0 = stage(1, acc[31], "sign0")
        mag0 = stage(32, Mux(acc[31], -acc, acc), "mag0")
        mult00 = stage(32, mult0, "mult00")
        sign1 = stage(1, sign0, "sign1")
        mag1 = stage(32, mag0, "mag1")
        lz1 = stage(range(33), leading_zeros(mag0), "lz1")
        mult1 = stage(32, mult00, "mult1")
        # zero point and clamp bounds, needed at stage 6
        zp6, lo7, hi7 = (delay(field, 8, stages, name) for field, name, stages in
                         ((zp0, "zp", 8), (lo0, "lo", 9), (hi0, "hi", 9)))

        # Stage 2: int32 -> float32 (24-bit mantissa, round half to even): normalize, then
        # round
        normal = stage(32, mag1 << lz1, "normal")
        lz2 = stage(range(33), lz1, "lz2")
        sign_n, mult_n = stage(1, sign1, "sign_n"), stage(32, mult1, "mult_n")
        mant = normal[8:32]
        rounded = Signal(25)
        m.d.comb += rounded.eq(mant + _round_half_even(mant, normal[7], normal[0:7].any()))
        exp_a = Signal(signed(8))
        m.d.comb += exp_a.eq(31 - lz2 + rounded[24])
        mant_a = stage(24, Mux(rounded[24], rounded[1:25], rounded[0:24]), "mant_a")
        exp_a2 = stage(signed(8), exp_a, "exp_a2")
        zero2 = stage(1, lz2 == 32, "zero2")
        sign2 = stage(1, sign_n, "sign2")
        mult2 = stage(32, mult_n, "mult2")

        # Stage 3: 24 x 24 mantissa product and exponent sum.
        mant_m = Cat(mult2[0:23], Const(1, 1))
        exp_m = Signal(signed(10))
        m.d.comb += exp_m.eq(Cat(mult2[23:31], Const(0, 2)).as_signed() - 127)
        product3 = stage(48, mant_a * mant_m, "product3")
        exp3 = stage(signed(10), exp_a2 + exp_m, "exp3")
        zero3, sign3 = stage(1, zero2, "zero3"), stage(1, sign2, "sign3")

        # Stage 4: normalize and round the product to a float32 mantissa.
        top = product3[47]
        mant_p = Mux(top, product3[24:48], product3[23:47])
        guard_p = Mux(top, product3[23], product3[22])
        sticky_p = Mux(top, product3[0:23].any(), product3[0:22].any())
        rounded_p = Signal(25)
        m.d.comb += rounded_p.eq(mant_p + _round_half_even(mant_p, guard_p, sticky_p))
        exp_p = Signal(signed(10))
        m.d.comb += exp_p.eq(exp3 + top + rounded_p[24])
        mant4 = stage(24, Mux(rounded_p[24], rounded_p[1:25], rounded_p[0:24]), "mant4")
        exp4 = stage(signed(10), exp_p, "exp4")
        zero4, sign4 = stage(1, zero3, "zero4"), stage(1, sign3, "sign4")

        # Stage 5: float32 -> integer, round half to even; |p| >= 2**31 saturates: the
        # shift, then the rounding.
        # value = mant4 * 2**(exp4 - 23) = (mant4 << 7) * 2**(exp4 - 30)
        right = Signal(range(32))
        m.d.comb += right.eq(30 - exp4)
        wide = Signal(62)
        m.d.comb += wide.eq(Cat(Const(0, 38), mant4) >> right)
        integer = stage(31, wide[31:62], "integer")
        guard_i, sticky_i = stage(1, wide[30], "guard_i"), stage(1, wide[0:30].any(), "sticky_i")
        small = stage(1, zero4 | (exp4 < -1), "small")
        saturate_i = stage(1, ~zero4 & (exp4 > 30), "saturate_i")
        sign_i = stage(1, sign4, "sign_i")
        rounded_i = Signal(32)
        m.d.comb += rounded_i.eq(integer + _round_half_even(integer, guard_i, sticky_i))
        saturate5 = stage(1, saturate_i, "saturate5")
        int5 = stage(32, Mux(small, 0, rounded_i), "int5")
        sign5 = stage(1, sign_i, "sign5")

        # Stage 6: apply the sign and add the zero point, then clamp.
        value = stage(signed(34), Mux(sign5, -int5.as_signed(), int5.as_signed()) + zp6, "value")
        saturate6, sign6 = stage(1, saturate5, "saturate6"), stage(1, sign5, "sign6")
        clamped = Signal(8)
        with m.If(saturate6):
            m.d.comb += clamped.eq(Mux(sign6, lo7, hi7))
        with m.Elif(value < lo7):
            m.d.comb += clamped.eq(lo7)
        with m.Elif(value > hi7):
            m.d.comb += clamped.eq(hi7)
        with m.Else():
            m.d.comb += clamped.eq(value[0:8])
        q6 = stage(8, clamped, "q6")

        # Stage 7: activation table.
        m.submodules.table = table = Memory(shape=8, depth=256, init=list(range(256)))
        write = table.write_port()
        read = table.read_port(domain="sync")
        m.d.comb += [
            write.addr.eq(self.table.payload.addr), write.data.eq(self.table.payload.data),
            write.en.eq(self.table.valid), self.table.ready.eq(1),
            read.addr.eq(q6), read.en.eq(advance),
            self.o.payload.eq(read.data),
        ]
        return m
