"""The stall control of a fixed-latency stream pipeline, shared by the arithmetic blocks."""

from amaranth import Signal

__all__ = ["stalling_pipeline"]


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
