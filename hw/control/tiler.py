"""Tiler: issues the DMA commands of every step of a layer's L3 loop nest.

The layer descriptor (:class:`hw.contract.LayerDescriptor`) is part of the contract; the
host packs it with ``host.golden.tiling.pack`` and ``host.golden.tiling.commands`` is the golden model of
the command stream.
"""

from amaranth import Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import check_range
from hw.contract import CHANNEL_BLOCK, PARAM_BYTES, DmaKind, LayerDescriptor
from hw.control.steps import output_size, step_layout

__all__ = ["Tiler", "command_layout"]

def command_layout(addr_width):
    """A Tiler command: ``kind`` (a :class:`DmaKind` value), byte ``addr`` and ``length``; ``group_last``:
    last command of its kind in this (output tile, channel tile) step; ``first_c`` /
    ``last_c``: the step is the first / last channel tile of its output tile; ``end``: the
    layer's last command."""
    return data.StructLayout({"kind": DmaKind, "addr": addr_width, "length": 32, "group_last": 1,
                              "first_c": 1, "last_c": 1, "end": 1})


_phase_layout = data.StructLayout({
    "en": 1, "base": 64, "n_outer": 16, "n_inner": 16, "s_outer": 64, "s_inner": 32,
    "length": 32,
})


class Tiler(wiring.Component):
    """Issues the DMA commands of one layer, in :func:`host.golden.tiling.commands`'s order.

    ``steps`` (In stream of :data:`hw.control.steps.step_layout`): the loop nest's steps,
    from :class:`hw.control.steps.StepWalker`; accepted one at a time.
    ``descriptor`` (In :class:`LayerDescriptor`): the layer; held from at least three
    cycles before its first step until its last command is out.
    ``cmd`` (Out stream of :func:`command_layout`): DMA commands.
    ``busy`` (Out): a step is being issued.

    Per step (output tile ``k0, x0, y0``, channel tile ``c0``): iAct tile (one command per
    input row segment per channel, rows merged when the tile spans whole rows and
    ``in_pitch == width``, channels merged when it also spans all rows), weight tile (one
    command per unit, a channel (3x3) or a channel block (1x1), merged when ``tile_k >=
    kernels``; a depthwise layer: one), the params block (first channel
    tile only) and, after the last channel tile, the output tile (merged like the input).
    The layer's last step's last command has ``end``.

    Timing: one cycle to take a step, two set-up cycles (its products, then its sums, each
    registered) plus one per kind of command in it, then one command per cycle while
    ``cmd`` is ready. The layer constants are registered from ``descriptor`` every cycle.
    """

    def __init__(self, *, addr_width=40):
        check_range("addr_width", addr_width, 12, 64)
        self.addr_width = addr_width
        self.command_layout = command_layout(addr_width)
        super().__init__({
            "steps": In(stream.Signature(step_layout)),
            "descriptor": In(LayerDescriptor),
            "cmd": Out(stream.Signature(self.command_layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.descriptor
        XO, YO = Signal(16), Signal(16)
        RS = Signal(4)
        ch_in = Signal(64)          # height * in_pitch
        ch_out = Signal(64)         # XO * out_pitch
        unit_bytes = Signal(32)     # kernels * 9: one unit (3x3 channel, 1x1 channel block) of weights
        m.d.comb += RS.eq(Mux(d.kernel_size == 3, 9, 1))
        m.d.sync += [XO.eq(output_size(d, d.height)), YO.eq(output_size(d, d.width)),
                     ch_in.eq(d.height * d.in_pitch), ch_out.eq(XO * d.out_pitch),
                     unit_bytes.eq(d.kernels * CHANNEL_BLOCK)]
        st = Signal(step_layout)
        phases = Signal(data.ArrayLayout(_phase_layout, 4))
        phase = Signal(2)
        end_inner, end_outer = Signal(16), Signal(16)      # the phase's last ii, io
        ptr_outer, ptr = Signal(64), Signal(64)
        io, ii = Signal(16), Signal(16)

        products = []

        def p(value, name):
            """A product of the step's fields: a register loaded every cycle (below, outside
            the state machine), from ``st``, which holds from PRODUCTS on."""
            value = Value.cast(value)
            reg = Signal(value.shape(), name=f"product_{name}")
            products.append(reg.eq(value))
            return reg

        cmd = self.cmd
        advance = ~cmd.valid | cmd.ready
        with m.If(advance):
            m.d.sync += cmd.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.steps.ready.eq(1)
                with m.If(self.steps.valid):
                    m.d.sync += st.eq(self.steps.payload)
                    m.next = "PRODUCTS"
            with m.State("PRODUCTS"):       # the set-up's products (``p``) are registered
                m.next = "SETUP"
            with m.State("SETUP"):
                rows_u, cols_u = st.rows_in.as_unsigned()[:16], st.cols_in.as_unsigned()[:16]
                merge_rows = (st.yi_lo == 0) & (st.cols_in == d.width) & (d.in_pitch == d.width)
                merge_all = merge_rows & (st.xi_lo == 0) & (st.rows_in == d.height)
                tc, tk, txo, tyo = st.tc, st.tk, st.txo, st.tyo
                pi, pw, pp, po = phases[DmaKind.IACT], phases[DmaKind.WEIGHT], phases[DmaKind.PARAMS], phases[DmaKind.OUTPUT]
                m.d.sync += [
                    pi.en.eq((st.rows_in > 0) & (st.cols_in > 0)),
                    pi.base.eq(d.input_addr + p(st.c0 * ch_in, "in_channel") + p(st.xi_lo * d.in_pitch, "in_row") + st.yi_lo),
                    pi.n_outer.eq(Mux(merge_all, 1, tc)),
                    pi.n_inner.eq(Mux(merge_rows, 1, rows_u)),
                    pi.s_outer.eq(ch_in), pi.s_inner.eq(d.in_pitch),
                    pi.length.eq(Mux(merge_all, p(tc * ch_in, "in_all"),
                                     Mux(merge_rows, p(rows_u * d.width, "in_rows"), cols_u))),
                ]
                with m.If(d.depthwise):             # (K, 9)
                    m.d.sync += [pw.base.eq(d.weight_addr + p(st.k0 * RS, "dw_base")), pw.n_outer.eq(1),
                                 pw.s_outer.eq(0), pw.length.eq(p(tk * RS, "dw_length"))]
                with m.Else():                      # unit-major (units, K, 9): T_K kernels per unit
                    # 1x1: units are channel blocks (c0 % 9 == 0: block c0 / 9 at c0 * K);
                    # 3x3: units are channels
                    merge_k = tk == d.kernels
                    units = Mux(d.kernel_size == 1, st.blocks, tc)
                    unit0 = p(Mux(d.kernel_size == 1, st.c0 * d.kernels, st.c0 * unit_bytes), "unit0")
                    m.d.sync += [
                        pw.base.eq(d.weight_addr + unit0 + p(st.k0 * CHANNEL_BLOCK, "unit_kernel")),
                        pw.n_outer.eq(Mux(merge_k, 1, units)), pw.s_outer.eq(unit_bytes),
                        pw.length.eq(Mux(merge_k, p(units * unit_bytes, "units_bytes"), p(tk * CHANNEL_BLOCK, "kernels_bytes"))),
                    ]
                m.d.sync += [pw.en.eq(1), pw.n_inner.eq(1), pw.s_inner.eq(0)]
                m.d.sync += [
                    pp.en.eq(st.first_c),
                    pp.base.eq(d.params_addr + p(st.k0 * PARAM_BYTES, "params_base")),
                    pp.n_outer.eq(1), pp.n_inner.eq(1), pp.s_outer.eq(0), pp.s_inner.eq(0),
                    pp.length.eq(p(tk * PARAM_BYTES, "params_length")),
                ]
                orow = (st.y0 == 0) & (tyo == YO) & (d.out_pitch == YO)
                oall = orow & (st.x0 == 0) & (txo == XO)
                m.d.sync += [
                    po.en.eq(st.last_c),
                    po.base.eq(d.output_addr + p(st.k0 * ch_out, "out_channel") + p(st.x0 * d.out_pitch, "out_row") + st.y0),
                    po.n_outer.eq(Mux(oall, 1, tk)), po.n_inner.eq(Mux(orow, 1, txo)),
                    po.s_outer.eq(ch_out), po.s_inner.eq(d.out_pitch),
                    po.length.eq(Mux(oall, p(tk * ch_out, "out_all"), Mux(orow, p(txo * YO, "out_rows"), tyo))),
                    phase.eq(0),
                ]
                m.next = "PLOAD"
            with m.State("PLOAD"):
                cur = phases[phase]
                with m.If(cur.en):
                    m.d.sync += [ptr_outer.eq(cur.base), ptr.eq(cur.base), io.eq(0), ii.eq(0),
                                 end_inner.eq(cur.n_inner - 1), end_outer.eq(cur.n_outer - 1)]
                    m.next = "EMIT"
                with m.Elif(phase == DmaKind.OUTPUT):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += phase.eq(phase + 1)
            with m.State("EMIT"):
                cur = phases[phase]
                inner_last = ii == end_inner
                group_last = (io == end_outer) & inner_last
                with m.If(advance):
                    m.d.sync += [
                        cmd.valid.eq(1), cmd.payload.kind.eq(phase), cmd.payload.addr.eq(ptr),
                        cmd.payload.length.eq(cur.length), cmd.payload.group_last.eq(group_last),
                        cmd.payload.first_c.eq(st.first_c), cmd.payload.last_c.eq(st.last_c),
                        cmd.payload.end.eq(group_last & (phase == DmaKind.OUTPUT) & st.last),
                    ]
                    with m.If(inner_last):
                        m.d.sync += [ii.eq(0), io.eq(io + 1), ptr_outer.eq(ptr_outer + cur.s_outer),
                                     ptr.eq(ptr_outer + cur.s_outer)]
                    with m.Else():
                        m.d.sync += [ii.eq(ii + 1), ptr.eq(ptr + cur.s_inner)]
                    with m.If(group_last):
                        with m.If(phase == DmaKind.OUTPUT):
                            m.next = "IDLE"
                        with m.Else():
                            m.d.sync += phase.eq(phase + 1)
                            m.next = "PLOAD"
            m.d.comb += self.busy.eq(~self.steps.ready | cmd.valid)
        m.d.sync += products
        return m
