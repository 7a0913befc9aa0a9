"""Division by a constant without a divider, for the blocks' address and size arithmetic."""

from amaranth import Value

__all__ = ["reciprocal", "ceil_div_const"]


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
