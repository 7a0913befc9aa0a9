"""Arithmetic with short paths: division by a constant without a divider, for the blocks'
address and size arithmetic, and a leading-zero count as a tree."""

from amaranth import Cat, Const, Mux, Value

__all__ = ["reciprocal", "ceil_div_const", "leading_zeros"]


def reciprocal(divisor, width):
    """``(multiplier, shift)`` such that ``n // divisor == (n * multiplier) >> shift`` for
    every ``0 <= n < 2 ** width`` (Granlund and Montgomery, "Division by invariant integers
    using multiplication", 1994, theorem 4.2: ``2 ** shift <= multiplier * divisor <=
    2 ** shift + 2 ** (shift - width)``)."""
    if divisor < 1:
        raise ValueError(f"divisor must be >= 1, got {divisor}")
    shift = width + (divisor - 1).bit_length()
    multiplier = -(-(1 << shift) // divisor)
    assert (1 << shift) <= multiplier * divisor <= (1 << shift) + (1 << (shift - width))
    return multiplier, shift


def ceil_div_const(value, divisor):
    """``ceil(value / divisor)`` of an unsigned value and a constant divisor: a shift for a
    power of two, else one constant multiplication (:func:`reciprocal`) and a shift, a
    short path where Amaranth's ``//`` builds a whole divider."""
    value = Value.cast(value)
    if divisor < 1:
        raise ValueError(f"divisor must be >= 1, got {divisor}")
    biased = value + (divisor - 1)
    if divisor & (divisor - 1) == 0:
        return biased >> (divisor.bit_length() - 1)
    multiplier, shift = reciprocal(divisor, len(biased))
    quotient = (biased * multiplier) >> shift
    return quotient[:len(biased)]


def leading_zeros(value):
    """The number of leading zero bits of an unsigned ``value`` (its width when it is 0), as
    a tree of ``log2(width)`` two-way selections: a priority chain over the bits (an ``If``
    per bit) is ``width`` LUTs deep."""
    value = Value.cast(value)
    width = len(value)
    if width < 1:
        raise ValueError(f"value must have at least one bit, got {width}")
    size = 1
    while size < width:
        size *= 2
    # pad on the right (low end) with ones: the count of a padded value is the value's own
    bits = Cat(Const((1 << (size - width)) - 1, size - width), value) if size > width else value

    def count(part):
        """(all zero, leading zeros below len(part)) of a power-of-two-wide part."""
        if len(part) == 1:
            return ~part[0], Const(0, 0)
        half = len(part) // 2
        zero_hi, count_hi = count(part[half:])
        zero_lo, count_lo = count(part[:half])
        return zero_hi & zero_lo, Mux(zero_hi, Cat(count_lo, Const(1, 1)), Cat(count_hi, Const(0, 1)))

    zero, partial = count(bits)
    return Mux(zero, width, partial)
