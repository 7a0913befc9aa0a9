"""Tiler: walks a layer's L3 loop nest and issues the DMA commands of every tile.

The layer descriptor (:class:`hw.contract.LayerDescriptor`) is part of the contract; the
host packs it with ``host.golden.tiling.pack`` and ``host.golden.tiling.commands`` is the golden model of
the command stream.
"""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import check_range
from hw.contract import PARAM_BYTES, DmaKind, LayerDescriptor

__all__ = ["Tiler", "command_layout"]

def command_layout(addr_width):
    """A Tiler command: ``kind`` (a :class:`DmaKind` value), byte ``addr`` and ``length``; ``group_last``:
    last command of its kind in this (output tile, channel tile) step; ``first_c`` /
    ``last_c``: the step is the first / last channel tile of its output tile; ``end``: the
    layer's last command."""
    return data.StructLayout({"kind": 2, "addr": addr_width, "length": 32, "group_last": 1,
                              "first_c": 1, "last_c": 1, "end": 1})


_phase_layout = data.StructLayout({
    "en": 1, "base": 64, "n_outer": 16, "n_inner": 16, "s_outer": 64, "s_inner": 32,
    "length": 32,
})


class Tiler(wiring.Component):
    """Issues the DMA commands of one layer, in :func:`host.golden.tiling.commands`'s order.

    ``desc`` (In stream of :class:`LayerDescriptor`): a layer to walk; accepted when idle.
    ``cmd`` (Out stream of :func:`command_layout`): DMA commands.
    ``busy`` (Out): a layer is being walked.

    Loop nest: k0, x0, y0 (output tile), then c0 (channel tile); per step: iAct tile (one
    command per input row segment per channel, rows merged when the tile spans whole rows
    and ``in_pitch == width``, channels merged when it also spans all rows), weight tile (one
    command per kernel, merged when ``tile_c >= channels``), the params block (first channel
    tile only) and, after the last channel tile, the output tile (merged like the input).

    Timing: 2 cycles to derive the layer constants, 2 set-up cycles per step plus one per
    kind of command in it, then one command per cycle while ``cmd`` is ready. Address
    arithmetic is done with multiplies in the set-up cycles (registered).
    """

    def __init__(self, *, addr_width=40):
        check_range("addr_width", addr_width, 12, 64)
        self.addr_width = addr_width
        self.command_layout = command_layout(addr_width)
        super().__init__({
            "desc": In(stream.Signature(LayerDescriptor)),
            "cmd": Out(stream.Signature(self.command_layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        d = Signal(LayerDescriptor)
        XO, YO = Signal(16), Signal(16)
        RS = Signal(4)
        ch_in = Signal(64)          # height * in_pitch
        ch_out = Signal(64)         # XO * out_pitch
        crs = Signal(32)            # channels * R * S
        k0, x0, y0, c0 = (Signal(16, name=n) for n in ("k0", "x0", "y0", "c0"))
        tk, tc, txo, tyo = (Signal(16, name=n) for n in ("tk", "tc", "txo", "tyo"))
        xi_lo, xi_hi, yi_lo, yi_hi = (Signal(signed(20), name=n)
                                      for n in ("xi_lo", "xi_hi", "yi_lo", "yi_hi"))
        first_c, last_c, tile_last = Signal(), Signal(), Signal()
        phases = Signal(data.ArrayLayout(_phase_layout, 4))
        phase = Signal(2)
        ptr_outer, ptr = Signal(64), Signal(64)
        io, ii = Signal(16), Signal(16)

        cmd = self.cmd
        advance = ~cmd.valid | cmd.ready
        with m.If(advance):
            m.d.sync += cmd.valid.eq(0)

        def mn(a, b):
            return Mux(a < b, a, b)

        def stride_mul(v):
            return Mux(d.stride == 2, v << 1, v)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.desc.ready.eq(1)
                with m.If(self.desc.valid):
                    m.d.sync += [d.eq(self.desc.payload), k0.eq(0), x0.eq(0), y0.eq(0), c0.eq(0)]
                    m.next = "INIT1"
            with m.State("INIT1"):
                span_x = d.height + 2 * d.padding - d.kernel_size
                span_y = d.width + 2 * d.padding - d.kernel_size
                m.d.sync += [
                    XO.eq(Mux(d.stride == 2, span_x >> 1, span_x) + 1),
                    YO.eq(Mux(d.stride == 2, span_y >> 1, span_y) + 1),
                    RS.eq(Mux(d.kernel_size == 3, 9, 1)),
                    ch_in.eq(d.height * d.in_pitch),
                ]
                m.next = "INIT2"
            with m.State("INIT2"):
                m.d.sync += [ch_out.eq(XO * d.out_pitch), crs.eq(d.channels * RS)]
                m.next = "BOUNDS"
            with m.State("BOUNDS"):
                t_xo = mn(d.tile_xo, XO - x0)
                t_yo = mn(d.tile_yo, YO - y0)
                xs = stride_mul(x0) - d.padding
                xe = stride_mul(x0 + t_xo - 1) - d.padding + d.kernel_size
                ys = stride_mul(y0) - d.padding
                ye = stride_mul(y0 + t_yo - 1) - d.padding + d.kernel_size
                m.d.sync += [
                    tk.eq(mn(d.tile_k, d.kernels - k0)), tc.eq(mn(d.tile_c, d.channels - c0)),
                    txo.eq(t_xo), tyo.eq(t_yo),
                    xi_lo.eq(Mux(xs < 0, 0, xs)), xi_hi.eq(Mux(xe > d.height, d.height, xe)),
                    yi_lo.eq(Mux(ys < 0, 0, ys)), yi_hi.eq(Mux(ye > d.width, d.width, ye)),
                    first_c.eq(c0 == 0), last_c.eq(c0 + d.tile_c >= d.channels),
                    tile_last.eq((k0 + d.tile_k >= d.kernels) & (x0 + d.tile_xo >= XO) &
                                 (y0 + d.tile_yo >= YO)),
                ]
                m.next = "SETUP"
            with m.State("SETUP"):
                rows = Signal(signed(20))
                cols = Signal(signed(20))
                m.d.comb += [rows.eq(xi_hi - xi_lo), cols.eq(yi_hi - yi_lo)]
                rows_u, cols_u = rows.as_unsigned()[:16], cols.as_unsigned()[:16]
                merge_rows = (yi_lo == 0) & (yi_hi == d.width) & (d.in_pitch == d.width)
                merge_all = merge_rows & (xi_lo == 0) & (xi_hi == d.height)
                pi, pw, pp, po = phases[DmaKind.IACT], phases[DmaKind.WEIGHT], phases[DmaKind.PARAMS], phases[DmaKind.OUTPUT]
                m.d.sync += [
                    pi.en.eq((rows > 0) & (cols > 0)),
                    pi.base.eq(d.input_addr + c0 * ch_in + xi_lo.as_unsigned()[:16] * d.in_pitch +
                               yi_lo.as_unsigned()[:16]),
                    pi.n_outer.eq(Mux(merge_all, 1, tc)),
                    pi.n_inner.eq(Mux(merge_rows, 1, rows_u)),
                    pi.s_outer.eq(ch_in), pi.s_inner.eq(d.in_pitch),
                    pi.length.eq(Mux(merge_all, tc * ch_in,
                                     Mux(merge_rows, rows_u * d.width, cols_u))),
                ]
                merge_w = tc == d.channels
                m.d.sync += [
                    pw.en.eq(1),
                    pw.base.eq(d.weight_addr + k0 * crs + c0 * RS),
                    pw.n_outer.eq(Mux(merge_w, 1, tk)), pw.n_inner.eq(1),
                    pw.s_outer.eq(crs), pw.s_inner.eq(0),
                    pw.length.eq(Mux(merge_w, tk * crs, tc * RS)),
                ]
                m.d.sync += [
                    pp.en.eq(first_c),
                    pp.base.eq(d.params_addr + k0 * PARAM_BYTES),
                    pp.n_outer.eq(1), pp.n_inner.eq(1), pp.s_outer.eq(0), pp.s_inner.eq(0),
                    pp.length.eq(tk * PARAM_BYTES),
                ]
                orow = (y0 == 0) & (tyo == YO) & (d.out_pitch == YO)
                oall = orow & (x0 == 0) & (txo == XO)
                m.d.sync += [
                    po.en.eq(last_c),
                    po.base.eq(d.output_addr + k0 * ch_out + x0 * d.out_pitch + y0),
                    po.n_outer.eq(Mux(oall, 1, tk)), po.n_inner.eq(Mux(orow, 1, txo)),
                    po.s_outer.eq(ch_out), po.s_inner.eq(d.out_pitch),
                    po.length.eq(Mux(oall, tk * ch_out, Mux(orow, txo * YO, tyo))),
                    phase.eq(0),
                ]
                m.next = "PLOAD"
            with m.State("PLOAD"):
                cur = phases[phase]
                with m.If(cur.en):
                    m.d.sync += [ptr_outer.eq(cur.base), ptr.eq(cur.base), io.eq(0), ii.eq(0)]
                    m.next = "EMIT"
                with m.Elif(phase == DmaKind.OUTPUT):
                    m.next = "NEXT"
                with m.Else():
                    m.d.sync += phase.eq(phase + 1)
            with m.State("EMIT"):
                cur = phases[phase]
                inner_last = ii == cur.n_inner - 1
                group_last = (io == cur.n_outer - 1) & inner_last
                with m.If(advance):
                    m.d.sync += [
                        cmd.valid.eq(1), cmd.payload.kind.eq(phase), cmd.payload.addr.eq(ptr),
                        cmd.payload.length.eq(cur.length), cmd.payload.group_last.eq(group_last),
                        cmd.payload.first_c.eq(first_c), cmd.payload.last_c.eq(last_c),
                        cmd.payload.end.eq(group_last & (phase == DmaKind.OUTPUT) & tile_last),
                    ]
                    with m.If(inner_last):
                        m.d.sync += [ii.eq(0), io.eq(io + 1), ptr_outer.eq(ptr_outer + cur.s_outer),
                                     ptr.eq(ptr_outer + cur.s_outer)]
                    with m.Else():
                        m.d.sync += [ii.eq(ii + 1), ptr.eq(ptr + cur.s_inner)]
                    with m.If(group_last):
                        with m.If(phase == DmaKind.OUTPUT):
                            m.next = "NEXT"
                        with m.Else():
                            m.d.sync += phase.eq(phase + 1)
                            m.next = "PLOAD"
            with m.State("NEXT"):
                m.next = "BOUNDS"
                with m.If(~last_c):
                    m.d.sync += c0.eq(c0 + d.tile_c)
                with m.Else():
                    m.d.sync += c0.eq(0)
                    with m.If(y0 + d.tile_yo < YO):
                        m.d.sync += y0.eq(y0 + d.tile_yo)
                    with m.Else():
                        m.d.sync += y0.eq(0)
                        with m.If(x0 + d.tile_xo < XO):
                            m.d.sync += x0.eq(x0 + d.tile_xo)
                        with m.Else():
                            m.d.sync += x0.eq(0)
                            with m.If(k0 + d.tile_k < d.kernels):
                                m.d.sync += k0.eq(k0 + d.tile_k)
                            with m.Else():
                                m.next = "IDLE"
            m.d.comb += self.busy.eq(~self.desc.ready | cmd.valid)
        return m
