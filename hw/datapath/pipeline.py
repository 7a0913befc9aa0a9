"""Pipeline helpers shared by the blocks: the stall control of a fixed-latency stream
pipeline, and a register stage of a value."""

from amaranth import Signal, Value

__all__ = ["registered", "stalling_pipeline"]


def registered(m, value, name):
    """``value`` one cycle later: a register of its whole shape, added to ``m``."""
    value = Value.cast(value)
    reg = Signal(value.shape(), name=name)
    m.d.sync += reg.eq(value)
    return reg


def stalling_pipeline(m, *, i, o, latency):
    """Stall control of a ``latency``-stage pipeline from stream ``i`` to stream ``o``,
    added to ``m``: the whole pipeline advances while ``o`` is not holding a beat back
    (``~o.valid | o.ready``), ``i.ready`` is that, and ``o.valid`` is ``i.valid`` delayed
    by ``latency`` advances. Returns the advance signal, which gates the stages' registers."""
    advance = Signal()
    valid = Signal(latency)
    m.d.comb += [advance.eq(~o.valid | o.ready), i.ready.eq(advance), o.valid.eq(valid[-1])]
    with m.If(advance):
        m.d.sync += valid.eq((valid << 1) | i.valid)
    return advance
