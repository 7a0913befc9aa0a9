"""StepWalker: the one walk of a layer's L3 loop nest in hardware.

It takes the descriptor once and emits the loop nest's steps (one per channel tile of
each output tile, in :func:`host.golden.tiling.steps`'s order) on two streams, one for the
Tiler (DMA commands) and one for the Sequencer (compute core commands), each through its
own queue, so the two consumers stay in step by construction.
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arith import ceil_div_const
from hw.config import CHANNEL_BLOCK, check_range
from hw.contract import LayerDescriptor

__all__ = ["StepWalker", "step_layout", "output_size"]

# host.golden.tiling.Step's fields, plus ``last``: the layer's last step
# (rows_in / cols_in are negative where a 1x1 kernel's output tile lies in the padding)
step_layout = data.StructLayout({
    **{name: 16 for name in ("k0", "x0", "y0", "c0", "tk", "tc", "txo", "tyo", "xi_lo", "yi_lo")},
    "rows_in": signed(17), "cols_in": signed(17),
    "pad_top": 2, "pad_left": 2, "first_c": 1, "last_c": 1, "blocks": 16, "flat": 1, "last": 1,
})


def output_size(d, size):
    """Output rows (or columns) of an input ``size`` under descriptor ``d``."""
    span = size + (d.padding << 1) - d.kernel_size
    return Mux(d.stride == 2, span >> 1, span) + 1


class StepWalker(wiring.Component):
    """Walks the loop nest of one layer per ``desc`` and emits its steps.

    ``desc`` (In stream of :class:`LayerDescriptor`): a validated layer; accepted when idle.
    ``tiler_steps``, ``seq_steps`` (Out streams of :data:`step_layout`): the same steps, each
    through a ``depth``-step queue with its own ``ready``, so either consumer may run up
    to ``depth`` steps ahead of the other.
    ``busy`` (Out): a layer is being walked or steps are still queued.

    Timing: the output size is derived as the descriptor is accepted; then one step per
    cycle while both queues have room, each through three pipeline stages (the first is
    readable five cycles after ``desc``). A new ``desc`` is accepted once the last step
    of the previous one is in the queues.
    """

    def __init__(self, *, depth=8):
        check_range("depth", depth, 1, 1024)
        self.depth = depth
        super().__init__({
            "desc": In(stream.Signature(LayerDescriptor)),
            "tiler_steps": Out(stream.Signature(step_layout)),
            "seq_steps": Out(stream.Signature(step_layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        d = Signal(LayerDescriptor)
        XO, YO = Signal(16), Signal(16)
        k0, x0, y0, c0 = (Signal(16, name=n) for n in ("k0", "x0", "y0", "c0"))
        stride2 = d.stride == 2

        queues = []
        for name in ("tiler_steps", "seq_steps"):
            q = fifo.SyncFIFO(width=step_layout.size, depth=self.depth)
            m.submodules[f"queue_{name}"] = q
            queues.append(q)
            port = getattr(self, name)
            m.d.comb += [port.valid.eq(q.r_rdy), port.payload.eq(q.r_data), q.r_en.eq(port.ready)]

        def clip(total, start, tile):
            return Mux(total - start < tile, total - start, tile)

        kernel1 = d.kernel_size == 1

        # three pipeline stages from the counters to the queues, advancing together while
        # the last one is empty or both queues take its step
        valid = Signal(3)
        room = Signal()
        advance = Signal()
        m.d.comb += [room.eq(queues[0].w_rdy & queues[1].w_rdy), advance.eq(~valid[2] | room)]
        walking = Signal()

        # stage 1: the tile's clipped sizes and its place in the loop nest
        step1 = Signal(step_layout)
        tk = clip(d.kernels, k0, d.tile_k)
        last_c = d.depthwise | (c0 + d.tile_c >= d.channels)   # depthwise: one step, c0 = k0
        last_y, last_x = y0 + d.tile_yo >= YO, x0 + d.tile_xo >= XO
        last_k = k0 + d.tile_k >= d.kernels
        # host.golden.tiling.flat_tiles: 1x1, stride 1, full-width tiles of contiguous rows
        flat = kernel1 & ~stride2 & (d.tile_yo >= YO) & (d.in_pitch == d.width) & (d.out_pitch == YO)
        with m.If(advance):
            m.d.sync += [
                step1.k0.eq(k0), step1.x0.eq(x0), step1.y0.eq(y0), step1.c0.eq(Mux(d.depthwise, k0, c0)),
                step1.tk.eq(tk), step1.tc.eq(Mux(d.depthwise, tk, clip(d.channels, c0, d.tile_c))),
                step1.txo.eq(clip(XO, x0, d.tile_xo)), step1.tyo.eq(clip(YO, y0, d.tile_yo)),
                step1.first_c.eq(d.depthwise | (c0 == 0)), step1.last_c.eq(last_c), step1.flat.eq(flat),
                step1.last.eq(last_c & last_y & last_x & last_k),
            ]

        # stage 2: the first and last stored row (column) of each span, unclipped
        # (a 1x1 kernel reads ``stride`` rows per output row: host.golden.tiling.iact_tile)
        step2 = Signal(step_layout)
        spans = {}
        for name, origin, count in (("row", step1.x0, step1.txo), ("col", step1.y0, step1.tyo)):
            top = Signal(signed(20), name=f"{name}_top")
            end = Signal(signed(20), name=f"{name}_end")
            first = Mux(stride2, origin << 1, origin) - d.padding
            with m.If(advance):
                m.d.sync += [top.eq(first),
                             end.eq(first + Mux(kernel1, Mux(stride2, count << 1, count),
                                                Mux(stride2, (count - 1) << 1, count - 1) + d.kernel_size))]
            spans[name] = top, end
        with m.If(advance):
            m.d.sync += [step2.eq(step1), step2.blocks.eq(ceil_div_const(step1.tc, CHANNEL_BLOCK))]

        # stage 3: the stored span [lo, hi): lo, hi - lo, lo - top
        held_step = Signal(step_layout)
        with m.If(advance):
            m.d.sync += held_step.eq(step2)
            for name, size, lo_field, count_field, pad_field in (
                    ("row", d.height, "xi_lo", "rows_in", "pad_top"),
                    ("col", d.width, "yi_lo", "cols_in", "pad_left")):
                top, end = spans[name]
                lo = Mux(top < 0, 0, top)
                hi = Mux(end > size, size, end)
                m.d.sync += [getattr(held_step, lo_field).eq(lo), getattr(held_step, count_field).eq(hi - lo),
                             getattr(held_step, pad_field).eq(lo - top)]
            m.d.sync += valid.eq(Cat(walking, valid[:2]))
        for q in queues:
            m.d.comb += [q.w_data.eq(held_step.as_value()), q.w_en.eq(valid[2] & room)]

        with m.FSM():
            with m.State("IDLE"):       # a new layer once the pipeline holds no step
                m.d.comb += self.desc.ready.eq(valid == 0)
                with m.If(self.desc.valid):
                    p = self.desc.payload
                    m.d.sync += [d.eq(p), XO.eq(output_size(p, p.height)),
                                 YO.eq(output_size(p, p.width)), k0.eq(0), x0.eq(0), y0.eq(0), c0.eq(0)]
                    m.next = "WALK"
            with m.State("WALK"):
                m.d.comb += [self.busy.eq(1), walking.eq(1)]
                with m.If(advance):
                    # next step: an odometer, c0 innermost, then y0, x0, k0
                    carry = Const(1)
                    for counter, tile, last in ((c0, d.tile_c, last_c), (y0, d.tile_yo, last_y),
                                                (x0, d.tile_xo, last_x), (k0, d.tile_k, last_k)):
                        with m.If(carry):
                            m.d.sync += counter.eq(Mux(last, 0, counter + tile))
                        carry = carry & last
                    with m.If(carry):
                        m.next = "IDLE"
        with m.If((valid != 0) | queues[0].r_rdy | queues[1].r_rdy):
            m.d.comb += self.busy.eq(1)
        return m
