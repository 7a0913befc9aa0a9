import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from hw.arith import ceil_div_const, leading_zeros, reciprocal


@pytest.mark.parametrize("divisor", [1, 2, 3, 7, 9, 12, 16, 24, 48, 100, 255])
def test_reciprocal_exhaustive_17_bits(divisor):
    width = 17
    multiplier, shift = reciprocal(divisor, width)
    n = np.arange(1 << width, dtype=np.uint64)
    assert np.array_equal((n * np.uint64(multiplier)) >> np.uint64(shift), n // np.uint64(divisor))


def test_reciprocal_rejects_zero():
    with pytest.raises(ValueError, match="divisor"):
        reciprocal(0, 8)


@pytest.mark.parametrize("divisor", [1, 8, 9, 24])
def test_ceil_div_const_exhaustive_10_bits(divisor):
    value = Signal(10)
    quotient = Signal(12)
    m = Module()
    m.d.comb += quotient.eq(ceil_div_const(value, divisor))
    sim = Simulator(m)
    got = []

    async def bench(ctx):
        for n in range(1 << 10):
            ctx.set(value, n)
            got.append(ctx.get(quotient))

    sim.add_testbench(bench)
    sim.run()
    assert got == [-(-n // divisor) for n in range(1 << 10)]


@pytest.mark.parametrize("width", [1, 5, 8, 12])
def test_leading_zeros_exhaustive(width):
    value = Signal(width)
    zeros = Signal(range(width + 1))
    m = Module()
    m.d.comb += zeros.eq(leading_zeros(value))
    sim = Simulator(m)
    got = []

    async def bench(ctx):
        for n in range(1 << width):
            ctx.set(value, n)
            got.append(ctx.get(zeros))

    sim.add_testbench(bench)
    sim.run()
    assert got == [width - n.bit_length() for n in range(1 << width)]


def test_leading_zeros_32_bits_at_every_position():
    value = Signal(32)
    zeros = Signal(range(33))
    m = Module()
    m.d.comb += zeros.eq(leading_zeros(value))
    sim = Simulator(m)
    cases = [0, 1, 0xFFFFFFFF] + [1 << b for b in range(32)] + [(1 << b) | 1 for b in range(32)]
    got = []

    async def bench(ctx):
        for n in cases:
            ctx.set(value, n)
            got.append(ctx.get(zeros))

    sim.add_testbench(bench)
    sim.run()
    assert got == [32 - n.bit_length() for n in cases]
