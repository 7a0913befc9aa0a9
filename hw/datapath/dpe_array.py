"""KP x YP array of DPEs with weight-stationary rows and shadow weight registers."""

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import AccelConfig, check_dsp_packing, check_flag, check_range
from hw.datapath.dpe import DPE, ACTIVATIONS, WEIGHTS, RESULT_SHAPE
from hw.datapath.dpe_pair import DPEPair

__all__ = ["DPEArray"]


class DPEArray(wiring.Component):
    """KP rows (kernels) x YP columns (sliding windows) of :class:`DPE`.

    Row ``k`` holds kernel ``k``'s 9 weights; column ``j`` sees window ``j``. Each cycle the
    array turns YP windows into KP x YP dot products.

    ``weights``: stream of KP x 9 s8, loaded into shadow registers (one set held at a time).
    ``windows``: stream of ``{windows: lanes x YP x 9 u8, swap: 1, tag}``: every row takes
    lane 0, or, while ``depthwise`` is set, row ``k < lanes`` takes lane ``k`` (its own
    channel). A beat with ``swap`` set
    first moves the shadow weights into the active registers, so a new kernel set costs no
    bubble as long as it was loaded in time; such a beat waits until the shadow is full.
    ``sums``: stream of ``{sums: KP x YP signed 20-bit, tag}``; ``sums[k][j]`` is kernel
    ``k`` on window ``j``. ``tag`` travels with its beat unchanged.

    ``dsp_packing`` (``AccelConfig.dsp_packing``; ``yp`` even): row ``k``'s columns ``2i``
    and ``2i + 1`` are one :class:`DPEPair` (two products per multiplication) instead of
    two :class:`DPE`; the same interfaces, latency and sums.

    Latency: one input register stage and the DPE (or DPE pair), 1 + 3 = 4 cycles from
    ``windows`` to ``sums``, packed or not.
    """

    def __init__(self, *, kp, yp, tag_width=1, lanes=1, dsp_packing=False):
        check_range("kp", kp, *AccelConfig.LIMITS["kp"])
        check_range("yp", yp, *AccelConfig.LIMITS["yp"])
        check_range("tag_width", tag_width, 1, 64)
        check_range("lanes", lanes, 1, kp)
        dsp_packing = check_flag("dsp_packing", dsp_packing)
        check_dsp_packing(yp, dsp_packing)
        self.kp, self.yp, self.tag_width, self.lanes = kp, yp, tag_width, lanes
        self.dsp_packing = dsp_packing
        self.weights_layout = data.ArrayLayout(WEIGHTS, kp)
        self.windows_layout = data.StructLayout({
            "windows": data.ArrayLayout(data.ArrayLayout(ACTIVATIONS, yp), lanes),
            "swap": 1,
            "tag": unsigned(tag_width),
        })
        self.sums_layout = data.StructLayout({
            "sums": data.ArrayLayout(data.ArrayLayout(RESULT_SHAPE, yp), kp),
            "tag": unsigned(tag_width),
        })
        super().__init__({
            "weights": In(stream.Signature(self.weights_layout)),
            "windows": In(stream.Signature(self.windows_layout)),
            "sums": Out(stream.Signature(self.sums_layout)),
            "depthwise": In(1),
        })

    @property
    def latency(self):
        return 1 + (DPEPair if self.dsp_packing else DPE).LATENCY

    def elaborate(self, platform):
        m = Module()
        kp, yp = self.kp, self.yp

        shadow = Signal(self.weights_layout)
        shadow_full = Signal()
        active = Signal(self.weights_layout)

        # Input register stage: the accepted window beat and the weights it uses.
        window = Signal(data.ArrayLayout(data.ArrayLayout(ACTIVATIONS, yp), self.lanes))
        window_valid = Signal()
        tags = [Signal(self.tag_width, name=f"tag{s}") for s in range(self.latency)]

        def row_window(k, j):
            """Row ``k``'s window ``j``: lane 0's, or in depthwise mode lane ``k``'s."""
            if 0 < k < self.lanes:
                return Mux(self.depthwise, window[k][j], window[0][j])
            return window[0][j]

        # engines[k]: row k's DPEs, or its DPE pairs (columns 2i, 2i + 1) when packing
        columns = 2 if self.dsp_packing else 1
        engines = [[DPEPair() if self.dsp_packing else DPE() for _ in range(yp // columns)]
                   for _ in range(kp)]
        for k in range(kp):
            for e, engine in enumerate(engines[k]):
                m.submodules[f"dpe_{k}_{e}" if columns == 1 else f"dpe_pair_{k}_{e}"] = engine
                m.d.comb += [
                    engine.i.valid.eq(window_valid),
                    engine.i.payload.weights.eq(active[k]),
                    engine.o.ready.eq(self.sums.ready),
                ]
                if columns == 1:
                    m.d.comb += [engine.i.payload.activations.eq(row_window(k, e)),
                                 self.sums.payload.sums[k][e].eq(engine.o.payload)]
                else:
                    for w in range(2):
                        m.d.comb += [engine.i.payload.activations[w].eq(row_window(k, 2 * e + w)),
                                     self.sums.payload.sums[k][2 * e + w].eq(engine.o.payload[w])]
        lead = engines[0][0]    # every engine advances in lockstep
        advance = lead.i.ready | ~window_valid

        blocked = self.windows.payload.swap & ~shadow_full
        accept = Signal()
        swap = Signal()
        m.d.comb += [
            self.windows.ready.eq(advance & ~blocked),
            accept.eq(self.windows.valid & self.windows.ready),
            swap.eq(accept & self.windows.payload.swap),
            self.weights.ready.eq(~shadow_full | swap),
            self.sums.valid.eq(lead.o.valid),
            self.sums.payload.tag.eq(tags[-1]),
        ]

        with m.If(self.weights.valid & self.weights.ready):
            m.d.sync += [shadow.eq(self.weights.payload), shadow_full.eq(1)]
        with m.Elif(swap):
            m.d.sync += shadow_full.eq(0)
        with m.If(swap):
            m.d.sync += active.eq(shadow)

        with m.If(advance):
            m.d.sync += [window_valid.eq(accept), window.eq(self.windows.payload.windows),
                         tags[0].eq(self.windows.payload.tag)]
        with m.If(lead.i.ready):
            for s in range(1, self.latency):
                m.d.sync += tags[s].eq(tags[s - 1])
        return m
