"""Clock estimate of a yosys-mapped UltraScale+ netlist: ``python -m gen.timing NETLIST.json``.

A static timing walk over the cells ``synth_xilinx -family xcup`` maps to (the yosys JSON
that :func:`gen.report.synthesize` writes with ``netlist=True``): every flip-flop, and every
internal pipeline register of a DSP48E2, block RAM or UltraRAM that its parameters enable,
starts and ends paths; LUTs, carry chains, wide muxes and the unregistered stages of those
primitives are delays between them. One topological pass (no path enumeration) gives each
net its latest arrival; the worst register-to-register path sets the clock:
``Fmax = 1000 / (clock-to-out + cells + nets + setup + clock uncertainty)``.

Delay constants (ns) for a -2 speed grade UltraScale+ (the ZCU104's xczu7ev-ffvc1156-2-e)
at VCCINT = 0.85 V; ``DELAYS`` holds them, ``analyze(..., delays=...)`` overrides any:

=====================  =====  ===========================================================
constant               ns     source
=====================  =====  ===========================================================
``ff_clk_to_q``        0.08   Vivado 2021.2 timing report, xczu3eg -1: Prop_FDRE_C_Q
                              0.093, scaled by about 0.85 to -2 (DS925's -1 / -2 DSP
                              FMAX ratio is 645 / 775 = 0.83)
``ff_setup``           0.05   Vivado: Setup_FDRE_C_D about 0.03; CE and R pins a little
                              more: one value for D, CE, R/S (assumption)
``clock_uncertainty``  0.035  Vivado's default jitter term on an ideal clock (same reports)
``lut``                0.10   Vivado xczu3eg -1: Prop_LUTn_Ix_O 0.04 to 0.18 by pin; one
                              value for every LUT1-6 input (Vivado swaps pins)
``net``                0.35   assumption (no placement): Vivado's unplaced estimates are
                              0.16 to 0.30 ns at -1; routed nets in a filled device 0.3 to
                              0.6 ns. Every net between two cells costs this, except:
``net_local``          0.05   a LUT that drives only a carry chain's S/DI (same slice)
``carry_cascade``      0.01   CO -> CI between carry blocks (Vivado: 0.007)
``dsp_cascade``        0.02   PCOUT/ACOUT/BCOUT -> PCIN/ACIN/BCIN (Vivado: 0.016)
``muxf_data``          0.10   MUXF7/8/9 I0/I1 -> O (assumption: half of the 7-series
                              values yosys' abc9 boxes take from prjxray, 0.20 ns)
``muxf_select``        0.15   MUXF7/8/9 S -> O (assumption, same source: 0.27 ns)
``carry_s_to_co``      0.21   CARRY8 S/DI -> CO (Vivado -1: S -> CO[7] 0.245); yosys maps
                              carry chains to CARRY4, which Vivado packs into CARRY8s:
                              both take these four values
``carry_s_to_o``       0.16   S/DI -> O (Vivado -1: DI -> O 0.189)
``carry_ci_to_co``     0.03   CI -> CO through one block (Vivado -1: CI -> CO[7] 0.030)
``carry_ci_to_o``      0.12   CI -> O (Vivado -1: CI -> O[7] 0.146)
``dsp_in``             0.16   DSP48E2 A/B/C/D pins to the first register or stage
                              (Vivado -1: DSP_A_B_DATA 0.195)
``dsp_preadd``         0.60   pre-adder in use (AMULTSEL or BMULTSEL = "AD"): fitted to
                              DS925's FMAX_NOPIPELINEREG (below)
``dsp_preadd_bypass``  0.08   pre-adder stage passed through (Vivado -1: 0.092)
``dsp_mult``           0.66   multiplier with M data (Vivado -1: 0.737 + 0.059)
``dsp_alu``            0.58   ALU (Vivado -1: DSP_ALU 0.699)
``dsp_out``            0.12   ALU to the P / PCOUT pins without PREG (Vivado -1: 0.141)
``dsp_clk_to_q``       0.30   an internal DSP register's clock-to-out (Vivado: CLK -> P
                              0.347 at -1LV)
``dsp_setup``          0.28   setup of an internal DSP register; with ``dsp_clk_to_q``
                              fitted to DS925's DSP48 FMAX table (below)
``bram_clk_to_q``      0.83   RAMB36E2/RAMB18E2 clock to DOUT without DO*_REG (Vivado
                              report on an Alveo U250, -2L at 0.85 V: 0.830)
``bram_clk_to_q_reg``  0.30   with DO*_REG = 1 (assumption: the ratio of DS958's Versal
                              TRCKO_DO_REG / TRCKO_DO, 0.262 / 0.901, applied, rounded up)
``bram_setup``         0.40   setup of every block RAM input (assumption)
``uram_clk_to_q``      1.60   URAM288 clock to DOUT without OREG (assumption)
``uram_clk_to_q_reg``  0.50   with OREG (assumption)
``uram_setup``         0.50   (assumption)
``srl_clk_to_q``       0.90   SRL16E/SRLC32E clock to Q (assumption)
``lutram_clk_to_q``    0.90   LUT RAM write clock to output (assumption)
``lutram_read``        0.15   LUT RAM address to output (a LUT plus its output mux;
                              +``muxf_data`` per F7/F8 level of the 128- and 256-deep ones)
``lutram_setup``       0.25   LUT RAM / SRL write-side setup (assumption)
=====================  =====  ===========================================================

The Vivado figures are the per-cell delays of published ``report_timing`` outputs
(Vivado 2021.2 on an xczu3eg-sbva484-1 and on an Alveo U250), scaled to -2 where noted.
The DSP48E2 stage delays are calibrated on DS925's DSP48 table (-2, 0.85 V): the model's
internal register-to-register paths (without the clock uncertainty) give 758 MHz with
every register (DS925
FMAX 775), 526 MHz without MREG (FMAX_MULT_NOMREG 544) and 413 MHz without MREG and
ADREG through the pre-adder (FMAX_NOPIPELINEREG 410). No Fmax of a whole published
design was found to calibrate the fabric constants against; the estimate is not Vivado:
without placement every net costs ``net``, clock skew, fanout, congestion and Vivado's
own optimizations (retiming, replication, register absorption into DSPs and block RAMs)
are not modelled.

Cells of a type the model does not know are counted in ``unknown_cells`` and, when they
have a clock pin (C, CLK, ...), taken as registers with flip-flop timing, else as one LUT
delay from every input to every output. Combinational loops raise
:class:`CombinationalLoop`, unless ``break_loops`` cuts them (counted in
``broken_loops``). Paths from or to top-level ports are not timed.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

__all__ = ["DELAYS", "DEVICE", "CombinationalLoop", "top_module", "analyze", "analyze_file",
           "estimate_clock", "format_summary", "main"]

DEVICE = "xczu7ev-ffvc1156-2-e"

DELAYS = {
    "ff_clk_to_q": 0.08, "ff_setup": 0.05, "clock_uncertainty": 0.035,
    "lut": 0.10, "net": 0.35, "net_local": 0.05, "carry_cascade": 0.01, "dsp_cascade": 0.02,
    "muxf_data": 0.10, "muxf_select": 0.15,
    "carry_s_to_co": 0.21, "carry_s_to_o": 0.16, "carry_ci_to_co": 0.03, "carry_ci_to_o": 0.12,
    "dsp_in": 0.16, "dsp_preadd": 0.60, "dsp_preadd_bypass": 0.08, "dsp_mult": 0.66,
    "dsp_alu": 0.58, "dsp_out": 0.12, "dsp_clk_to_q": 0.30, "dsp_setup": 0.28,
    "bram_clk_to_q": 0.83, "bram_clk_to_q_reg": 0.30, "bram_setup": 0.40,
    "uram_clk_to_q": 1.60, "uram_clk_to_q_reg": 0.50, "uram_setup": 0.50,
    "srl_clk_to_q": 0.90, "lutram_clk_to_q": 0.90, "lutram_read": 0.15, "lutram_setup": 0.25,
}

FF_TYPES = {"FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"}
LUT_TYPES = {f"LUT{n}" for n in range(1, 7)} | {"INV"}
MUXF_TYPES = {"MUXF7", "MUXF8", "MUXF9"}
CARRY_TYPES = {"CARRY4", "CARRY8"}
BRAM_TYPES = {"RAMB36E2", "RAMB18E2"}
SRL_TYPES = {"SRL16E", "SRLC16E", "SRLC32E"}
LUTRAM_TYPES = {"RAM16X1S", "RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S", "RAM512X1S",
                "RAM16X1D", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1D",
                "RAM32M", "RAM64M", "RAM32M16", "RAM64M8"}
# Cells that carry no data timing: clock and I/O buffers, constants, scope markers.
IGNORED_TYPES = {"BUFG", "BUFGCE", "BUFGCTRL", "BUFG_PS", "BUFCE_LEAF", "IBUF", "OBUF", "IOBUF",
                 "OBUFT", "IBUFG", "VCC", "GND", "$scopeinfo"}
CLOCK_PINS = {"C", "CLK", "WCLK", "CLKARDCLK", "CLKBWRCLK", "G", "CLKA", "CLKB"}
# Wide muxes fed by the slice's own LUTs / muxes (no routing between them).
_MUXF_FEEDERS = {"MUXF7": LUT_TYPES, "MUXF8": {"MUXF7"}, "MUXF9": {"MUXF8"}}
_DSP_CASCADE = {"PCIN": "PCOUT", "ACIN": "ACOUT", "BCIN": "BCOUT",
                "CARRYCASCIN": "CARRYCASCOUT", "MULTSIGNIN": "MULTSIGNOUT"}
_DSP_P_OUTPUTS = ("P", "PCOUT", "CARRYOUT", "CARRYCASCOUT", "MULTSIGNOUT", "PATTERNDETECT",
                  "PATTERNBDETECT", "OVERFLOW", "UNDERFLOW", "XOROUT")
_DSP_DEFAULTS = {"AREG": 1, "BREG": 1, "CREG": 1, "DREG": 1, "ADREG": 1, "MREG": 1, "PREG": 1,
                 "INMODEREG": 1, "OPMODEREG": 1, "ALUMODEREG": 1, "CARRYINREG": 1,
                 "CARRYINSELREG": 1, "USE_MULT": "MULTIPLY", "AMULTSEL": "A", "BMULTSEL": "B"}


class CombinationalLoop(ValueError):
    """The netlist has a combinational cycle (``cells``: some of the cells on or behind it)."""

    def __init__(self, cells):
        self.cells = list(cells)
        super().__init__(f"combinational loop through {len(self.cells)} or more cells, e.g. "
                         f"{', '.join(self.cells[:5])}; pass break_loops=True to cut it")


def _param(params, name, default=None):
    """A yosys JSON parameter as int (bit strings) or str; ``default`` when absent."""
    if name not in params:
        return default
    value = params[name]
    if isinstance(value, int):
        return value
    if value and set(value) <= set("01xz"):
        return int(value.replace("x", "0").replace("z", "0"), 2)
    return value.strip()


def top_module(netlist, top=None):
    """``(name, module)`` of the netlist's top module: ``top``, the one marked top, or the only one."""
    modules = netlist["modules"]
    if top is not None:
        return top, modules[top]
    marked = [n for n, m in modules.items() if _param(m.get("attributes", {}), "top", 0)]
    if len(marked) == 1:
        return marked[0], modules[marked[0]]
    if len(modules) == 1:
        return next(iter(modules.items()))
    raise ValueError(f"several modules and no top: name one of {sorted(modules)}")


class _Graph:
    """Timing graph: nodes are net bits (yosys ints) and internal points of cells."""

    def __init__(self, first_free):
        self.first_internal = self.next = first_free
        self.src, self.dst, self.w, self.cell, self.net = [], [], [], [], []
        self.starts = {}          # node -> (clock-to-out, cell)
        self.ends = []            # (node, delay after the node, cell, pin, net kind)

    def node(self):
        self.next += 1
        return self.next - 1

    def edge(self, src, dst, w, cell, net=0):
        self.src.append(src)
        self.dst.append(dst)
        self.w.append(w)
        self.cell.append(cell)
        self.net.append(net)

    def start(self, node, t, cell):
        if node not in self.starts or self.starts[node][0] < t:
            self.starts[node] = (t, cell)


# DSP48E2 clock enables and resets -> the register parameter they serve.
_DSP_CONTROL = {"CEA1": "AREG", "CEA2": "AREG", "RSTA": "AREG", "CEB1": "BREG", "CEB2": "BREG",
                "RSTB": "BREG", "CEC": "CREG", "RSTC": "CREG", "CED": "DREG", "RSTD": "DREG",
                "CEAD": "ADREG", "CEM": "MREG", "RSTM": "MREG", "CEP": "PREG", "RSTP": "PREG",
                "CECTRL": "OPMODEREG", "RSTCTRL": "OPMODEREG", "CEINMODE": "INMODEREG",
                "RSTINMODE": "INMODEREG", "CEALUMODE": "ALUMODEREG", "RSTALUMODE": "ALUMODEREG",
                "CECARRYIN": "CARRYINREG", "RSTALLCARRYIN": "CARRYINREG"}


class _Builder:
    """Builds the timing graph of one module's cells with the delays ``d``."""

    def __init__(self, cells, d):
        self.cells, self.d = cells, d
        self.types = [cell["type"] for _, cell in cells]
        self.dirs = [cell.get("port_directions") or _guess_directions(cell) for _, cell in cells]
        self.driver, self.fanout, max_bit = {}, {}, 1
        for i, (_, cell) in enumerate(cells):
            pd = self.dirs[i]
            for port, bits in cell["connections"].items():
                out = pd.get(port) == "output"
                for b in bits:
                    if isinstance(b, int):
                        max_bit = max(max_bit, b)
                        if out:
                            self.driver[b] = (i, port)
                        elif port not in CLOCK_PINS:
                            self.fanout[b] = self.fanout.get(b, 0) + 1
        self.g = _Graph(max_bit + 1)
        self.unknown = {}

    def net_delay(self, bit, ctype, pin):
        """(delay, kind) of the net from ``bit``'s driver to pin ``pin`` of a ``ctype`` cell;
        kind 1: a routed net, 2: a dedicated or same-slice connection."""
        d, drv = self.d, self.driver.get(bit)
        if drv is None:
            return d["net"], 1
        dtype, dpin = self.types[drv[0]], drv[1]
        if ctype in CARRY_TYPES:
            if pin in ("CI", "CI_TOP") and dtype in CARRY_TYPES and dpin == "CO":
                return d["carry_cascade"], 2
            if pin in ("S", "DI") and dtype in LUT_TYPES and self.fanout.get(bit, 0) == 1:
                return d["net_local"], 2
        elif ctype in MUXF_TYPES:
            if pin in ("I0", "I1") and dtype in _MUXF_FEEDERS[ctype]:
                return 0.0, 2
        elif _DSP_CASCADE.get(pin) == dpin:
            return d["dsp_cascade"], 2
        return d["net"], 1

    def bits(self, i, pins):
        conns = self.cells[i][1]["connections"]
        return [(b, pin) for pin in pins for b in conns.get(pin, ()) if isinstance(b, int)]

    def arcs(self, i, pins, outs, delay):
        """Every bit of input ``pins`` of cell ``i`` to every node of ``outs`` in ``delay``
        (plus each input's net); many-to-many through one internal node."""
        g, ctype, srcs = self.g, self.types[i], self.bits(i, pins)
        if not srcs or not outs:
            return
        if len(srcs) > 1 and len(outs) > 1:
            hub = g.node()
            for b, pin in srcs:
                w, k = self.net_delay(b, ctype, pin)
                g.edge(b, hub, w, i, k)
            for o in outs:
                g.edge(hub, o, delay, i)
            return
        for b, pin in srcs:
            w, k = self.net_delay(b, ctype, pin)
            for o in outs:
                g.edge(b, o, w + delay, i, k)

    def ends(self, i, pins, setup):
        ctype = self.types[i]
        for b, pin in self.bits(i, pins):
            w, k = self.net_delay(b, ctype, pin)
            self.g.ends.append((b, w + setup, i, pin, k))

    def starts(self, i, pins, t):
        for b, _ in self.bits(i, pins):
            self.g.start(b, t, i)

    def outs(self, i, pins):
        return [b for b, _ in self.bits(i, pins)]

    def build(self):
        d = self.d
        for i, (_, cell) in enumerate(self.cells):
            ctype, pd = self.types[i], self.dirs[i]
            ins = [p for p, v in pd.items() if v == "input" and p not in CLOCK_PINS]
            outs = [p for p, v in pd.items() if v == "output"]
            if ctype in IGNORED_TYPES:
                continue
            if ctype in LUT_TYPES:
                self.arcs(i, ins, self.outs(i, outs), d["lut"])
            elif ctype in FF_TYPES:
                self.starts(i, outs, d["ff_clk_to_q"])
                self.ends(i, ins, d["ff_setup"])
            elif ctype in MUXF_TYPES:
                o = self.outs(i, outs)
                self.arcs(i, ["I0", "I1"], o, d["muxf_data"])
                self.arcs(i, ["S"], o, d["muxf_select"])
            elif ctype in CARRY_TYPES:
                self.carry(i)
            elif ctype == "DSP48E2":
                self.dsp(i)
            elif ctype in BRAM_TYPES:
                params = cell.get("parameters", {})
                regs = {"A": _param(params, "DOA_REG", 1), "B": _param(params, "DOB_REG", 1)}
                self.ends(i, ins, d["bram_setup"])
                for pin in outs:
                    reg = regs.get(_bram_port(pin), 0)
                    self.starts(i, [pin], d["bram_clk_to_q_reg"] if reg else d["bram_clk_to_q"])
            elif ctype == "URAM288":
                params = cell.get("parameters", {})
                self.ends(i, ins, d["uram_setup"])
                for pin in outs:
                    reg = pin[-2:] in ("_A", "_B") and _param(params, "OREG" + pin[-2:], "FALSE") == "TRUE"
                    self.starts(i, [pin], d["uram_clk_to_q_reg"] if reg else d["uram_clk_to_q"])
            elif ctype in SRL_TYPES:
                self.starts(i, outs, d["srl_clk_to_q"])
                self.arcs(i, [p for p in ins if p.startswith("A")], self.outs(i, ["Q"]), d["lut"])
                self.ends(i, ["D", "CE"], d["lutram_setup"])
            elif ctype in LUTRAM_TYPES:
                depth = int(ctype[3:].split("X")[0].split("M")[0])
                read = d["lutram_read"] + d["muxf_data"] * max(0, math.ceil(math.log2(max(depth, 64) / 64)))
                self.starts(i, outs, d["lutram_clk_to_q"])
                self.arcs(i, [p for p in ins if p.startswith(("A", "DPRA"))], self.outs(i, outs), read)
                self.ends(i, ins, d["lutram_setup"])
            else:
                self.unknown[ctype] = self.unknown.get(ctype, 0) + 1
                if any(p in CLOCK_PINS for p in pd):
                    self.starts(i, outs, d["ff_clk_to_q"])
                    self.ends(i, ins, d["ff_setup"])
                else:
                    self.arcs(i, ins, self.outs(i, outs), d["lut"])
        return self.g

    def carry(self, i):
        """CARRY4 / CARRY8: a prefix chain over the S/DI bits; CI reaches every output."""
        g, d, conns = self.g, self.d, self.cells[i][1]["connections"]
        co, o = conns.get("CO", []), conns.get("O", [])
        ci = g.node()
        self.arcs(i, ["CI", "CI_TOP", "CYINIT"], [ci], 0.0)
        prev = None
        for k in range(max(len(co), len(o))):
            p = g.node()
            if prev is not None:
                g.edge(prev, p, 0.0, i)
            for pin in ("S", "DI"):
                bits = conns.get(pin, [])
                if k < len(bits) and isinstance(bits[k], int):
                    w, kind = self.net_delay(bits[k], self.types[i], pin)
                    g.edge(bits[k], p, w, i, kind)
            for bits, from_s, from_ci in ((co, d["carry_s_to_co"], d["carry_ci_to_co"]),
                                          (o, d["carry_s_to_o"], d["carry_ci_to_o"])):
                if k < len(bits) and isinstance(bits[k], int):
                    g.edge(p, bits[k], from_s, i)
                    g.edge(ci, bits[k], from_ci, i)
            prev = p

    def dsp(self, i):
        """DSP48E2 as its stages (inputs, pre-adder, multiplier, ALU), each register the
        parameters enable an endpoint and a start inside the cell."""
        g, d, cell = self.g, self.d, self.cells[i][1]
        p = {k: _param(cell.get("parameters", {}), k, v) for k, v in _DSP_DEFAULTS.items()}

        def point(inputs, reg, label):
            """An internal point fed by [(node, delay)]; a register when ``reg``."""
            inputs = [(n, w) for n, w in inputs if n is not None]
            if not inputs:
                return None
            n = g.node()
            for src, w in inputs:
                g.edge(src, n, w, i)
            if not reg:
                return n
            g.ends.append((n, d["dsp_setup"], i, label, 0))
            q = g.node()
            g.start(q, d["dsp_clk_to_q"], i)
            return q

        def pins(names, reg):
            """Input pins into their register (or straight on, when ``reg`` is 0)."""
            if not self.bits(i, names):
                return None
            n = g.node()
            self.arcs(i, names, [n], d["dsp_in"])
            return point([(n, 0.0)], p[reg], reg) if p[reg] else n

        a, b = pins(["A", "ACIN"], "AREG"), pins(["B", "BCIN"], "BREG")
        c, dd = pins(["C"], "CREG"), pins(["D"], "DREG")
        inmode = pins(["INMODE"], "INMODEREG")
        ctrl = [pins(["OPMODE"], "OPMODEREG"), pins(["ALUMODE"], "ALUMODEREG"),
                pins(["CARRYIN"], "CARRYINREG"), pins(["CARRYINSEL"], "CARRYINSELREG")]
        if "AD" in (p["AMULTSEL"], p["BMULTSEL"]):
            ad = point([(a, d["dsp_preadd"]), (dd, d["dsp_preadd"]), (inmode, d["dsp_preadd"])],
                       p["ADREG"], "ADREG")
        else:
            ad = point([(a, d["dsp_preadd_bypass"]), (inmode, d["dsp_preadd_bypass"])], False, "")
        alu_in = [(c, d["dsp_alu"])] + [(n, d["dsp_alu"]) for n in ctrl]
        if p["USE_MULT"] != "NONE":
            m = point([(ad, d["dsp_mult"]), (b, d["dsp_preadd_bypass"] + d["dsp_mult"])], p["MREG"], "MREG")
            alu_in.append((m, d["dsp_alu"]))
        if p["USE_MULT"] in ("NONE", "DYNAMIC"):
            alu_in += [(a, d["dsp_alu"]), (b, d["dsp_alu"])]
        if self.bits(i, ["PCIN", "CARRYCASCIN", "MULTSIGNIN"]):
            cascade = g.node()
            self.arcs(i, ["PCIN", "CARRYCASCIN", "MULTSIGNIN"], [cascade], 0.0)
            alu_in.append((cascade, d["dsp_alu"]))
        alu = point(alu_in, p["PREG"], "PREG")
        if alu is not None:
            for bit in self.outs(i, _DSP_P_OUTPUTS):
                g.edge(alu, bit, 0.0 if p["PREG"] else d["dsp_out"], i)
        for src, pin in ((a, "ACOUT"), (b, "BCOUT")):
            if src is not None:
                for bit in self.outs(i, [pin]):
                    g.edge(src, bit, 0.0, i)
        self.ends(i, [pin for pin, reg in _DSP_CONTROL.items() if p.get(reg, 1)], d["dsp_setup"])


def _guess_directions(cell):
    """Port directions of a cell that has no ``port_directions``: outputs by common names."""
    outs = {"O", "Q", "CO", "P", "O5", "O6", "SPO", "DPO", "Q31", "Q15"}
    return {p: ("output" if p in outs or p.startswith(("DO", "DOUT")) else "input")
            for p in cell["connections"]}


def _bram_port(pin):
    """The read port (``"A"`` or ``"B"``) a block RAM output pin belongs to, else None."""
    for prefix in ("DOUTP", "DOUT", "CASDOUTP", "CASDOUT"):
        if pin.startswith(prefix) and len(pin) > len(prefix) and pin[len(prefix)] in "AB":
            return pin[len(prefix)]
    return None


def _longest_paths(g, names, break_loops):
    """Latest arrival of every node (one topological pass); ``(arrival, pred edge, broken)``."""
    n_nodes, src, dst, w = g.next, g.src, g.dst, g.w
    head, nxt, indeg = [-1] * n_nodes, [-1] * len(src), [0] * n_nodes
    for e, s in enumerate(src):
        nxt[e] = head[s]
        head[s] = e
        indeg[dst[e]] += 1
    neg = -math.inf
    arrival, pred = [neg] * n_nodes, [-1] * n_nodes
    for node, (t, _) in g.starts.items():
        arrival[node] = t
    stack = [n for n in range(n_nodes) if indeg[n] == 0]
    done = bytearray(n_nodes)
    broken, scan = 0, 0
    while True:
        while stack:
            n = stack.pop()
            done[n] = 1
            a, e = arrival[n], head[n]
            while e != -1:
                m = dst[e]
                if a != neg and a + w[e] > arrival[m] and not done[m]:
                    arrival[m] = a + w[e]
                    pred[m] = e
                indeg[m] -= 1
                if indeg[m] == 0:
                    stack.append(m)
                e = nxt[e]
        while scan < n_nodes and done[scan]:
            scan += 1
        if scan == n_nodes:
            return arrival, pred, broken
        if not break_loops:
            stuck = {g.cell[e] for e in range(len(dst)) if not done[dst[e]]}
            raise CombinationalLoop(sorted(names[c] for c in stuck))
        indeg[scan] = 0          # cut: the node keeps the arrivals it has so far
        stack.append(scan)
        broken += 1


def _net_names(module):
    """Net bit -> its visible (non-generated) name, ``name[k]`` for a bit of a vector."""
    names = {}
    for name, net in module.get("netnames", {}).items():
        if net.get("hide_name"):
            continue
        bits = net["bits"]
        for k, b in enumerate(bits):
            if isinstance(b, int) and b not in names:
                names[b] = f"{name}[{k}]" if len(bits) > 1 else name
    return names


def _block(cell_name, out_bits, net_names, depth=2):
    """The hierarchy (up to ``depth`` levels) a cell belongs to: from the name of the net
    it drives, else from its own name; ``""`` for the top."""
    name = next((net_names[b] for b in out_bits if b in net_names), None)
    if name is None:
        name = cell_name.split("\\", 1)[-1] if cell_name.startswith("$flatten") else cell_name
    levels = []
    for part in name.split(".")[:-1]:
        if part.startswith("$"):
            break
        levels.append(part)
    return ".".join(levels[:depth])


def _by_block(builder, g, arrival, pred, net_names, uncertainty):
    """Each block's worst endpoint, slowest first: its estimate, start and end registers
    (by net name where they have one), logic levels and routed nets."""
    worst = {}
    for end in g.ends:
        a = arrival[end[0]]
        if a != -math.inf and (end[2] not in worst or a + end[1] > worst[end[2]][0]):
            worst[end[2]] = (a + end[1], *end)
    names = [name for name, _ in builder.cells]
    blocks = {}
    for cell, item in worst.items():
        outs = builder.outs(cell, [p for p, v in builder.dirs[cell].items() if v == "output"])
        block = _block(names[cell], outs, net_names) or "(top)"
        if block not in blocks or item[0] > blocks[block][0][0]:
            blocks[block] = (item, outs)
    result = {}
    for block, (item, outs) in sorted(blocks.items(), key=lambda kv: -kv[1][0][0]):
        period = item[0] + uncertainty
        end_net = next((net_names[b] for b in outs if b in net_names), None)
        path = _path(g, arrival, pred, item, period, names, builder.types, net_names, end_net)
        result[block] = {"estimated_clock_mhz": round(1000.0 / period, 1),
                         "start": path["start_net"] or path["start"], "end": end_net or path["end"],
                         "logic_levels": path["logic_levels"], "nets": path["nets"]}
    return result


def _path(g, arrival, pred, worst, period, names, types, net_names, end_net=None):
    """The critical path from the worst endpoint back to its start, cell by cell
    (``end_net``: the name of the register the path ends in, where it has one)."""
    total, node, _, end_cell, end_pin, end_kind = worst
    edges, n = [], node
    while pred[n] != -1:
        edges.append(pred[n])
        n = g.src[pred[n]]
    edges.reverse()
    start_cell = g.starts[n][1]
    steps = [[start_cell, arrival[n], n]]
    for e in edges:
        c, m = g.cell[e], g.dst[e]
        if steps[-1][0] == c:
            steps[-1][1:] = [arrival[m], m]
        else:
            steps.append([c, arrival[m], m])
    if steps[-1][0] == end_cell and node >= g.first_internal:
        steps[-1][1] = total      # a register inside the last cell (a DSP48E2 stage)
    else:
        steps.append([end_cell, total, None])
    cells = [{"name": names[c], "type": types[c], "at_ns": round(t, 3),
              **({"net": net_names[m]} if m in net_names else {})} for c, t, m in steps]
    if end_net is not None:
        cells[-1]["net"] = end_net
    nets = sum(1 for e in edges if g.net[e] == 1) + (end_kind == 1)
    return {"start": names[start_cell], "start_type": types[start_cell],
            "end": names[end_cell], "end_type": types[end_cell], "end_pin": end_pin,
            "start_net": cells[0].get("net"), "end_net": cells[-1].get("net"),
            "types": [types[c] for c, _, _ in steps], "cells": cells,
            "logic_levels": max(0, len(steps) - 2), "nets": nets, "delay_ns": round(period, 3)}


def _primitives(b):
    """DSP48E2 / RAMB36E2 / RAMB18E2 / URAM288 counts: ``total``, ``unregistered`` (the
    internal output registers not used: DSP48E2 without PREG, or without MREG while it
    multiplies; a block RAM or UltraRAM read port in use without DO*_REG / OREG) and
    ``unregistered_with_logic`` (of those, the ones whose outputs reach something other
    than a flip-flop's D pin, so the register cannot simply be absorbed); for DSP48E2
    also ``inputs_unregistered``: a driven A or B input without AREG / BREG."""
    counts = {t: {"total": 0, "unregistered": 0, "unregistered_with_logic": 0}
              for t in ("DSP48E2", "RAMB36E2", "RAMB18E2", "URAM288")}
    counts["DSP48E2"]["inputs_unregistered"] = 0
    flagged = []                  # (type, output bits)
    for i, (_, cell) in enumerate(b.cells):
        ctype = b.types[i]
        if ctype not in counts:
            continue
        counts[ctype]["total"] += 1
        params = cell.get("parameters", {})
        outs = [p for p, v in b.dirs[i].items() if v == "output"]
        if ctype == "DSP48E2":
            mult = _param(params, "USE_MULT", "MULTIPLY") != "NONE"
            bad = not _param(params, "PREG", 1) or (mult and not _param(params, "MREG", 1))
            pins = [p for p in outs if p in _DSP_P_OUTPUTS]
            if any(b.bits(i, [pin]) and not _param(params, reg, 1)
                   for pin, reg in (("A", "AREG"), ("B", "BREG"))):
                counts[ctype]["inputs_unregistered"] += 1
        else:
            pins = []
            for pin in outs:
                if ctype == "URAM288":
                    port = pin[-1] if pin.startswith("DOUT_") else None
                    reg = port and _param(params, f"OREG_{port}", "FALSE") == "TRUE"
                else:
                    port = _bram_port(pin)
                    reg = port and _param(params, f"DO{port}_REG", 1)
                if port and not reg and any(b.fanout.get(x, 0) for x, _ in b.bits(i, [pin])):
                    pins.append(pin)
            bad = bool(pins)
        used = [x for x, _ in b.bits(i, pins) if b.fanout.get(x, 0)]
        if bad and used:
            counts[ctype]["unregistered"] += 1
            flagged.append((ctype, set(used)))
    if flagged:
        logic = set()
        watched = set().union(*(bits for _, bits in flagged))
        for i, (_, cell) in enumerate(b.cells):
            is_ff = b.types[i] in FF_TYPES
            for pin, bits in cell["connections"].items():
                if b.dirs[i].get(pin) == "input" and not (is_ff and pin == "D"):
                    logic.update(x for x in bits if isinstance(x, int) and x in watched)
        for ctype, bits in flagged:
            if bits & logic:
                counts[ctype]["unregistered_with_logic"] += 1
    return counts


def analyze(netlist, *, top=None, delays=None, break_loops=False):
    """Estimate the clock of a mapped netlist (a yosys JSON dict).

    ``top``: the module (default: the marked or only one); ``delays``: overrides of
    ``DELAYS``; ``break_loops``: cut combinational loops instead of raising
    :class:`CombinationalLoop`. Returns ``estimated_clock_mhz`` (None without any
    register-to-register path), ``critical_path`` (start / end cell and type, the cells
    along it with their arrival times and the nets they drive, ``types``,
    ``logic_levels``, routed ``nets``, ``delay_ns``), ``blocks`` (the estimate of each
    hierarchy's worst endpoint, two levels deep, slowest first), ``primitives`` (see
    :func:`_primitives`), ``unknown_cells``, ``broken_loops``, ``cells``, ``endpoints``
    and ``seconds``."""
    t0 = time.perf_counter()
    d = {**DELAYS, **(delays or {})}
    _, module = top_module(netlist, top)
    cells = list(module["cells"].items())
    builder = _Builder(cells, d)
    g = builder.build()
    names = [name for name, _ in cells]
    arrival, pred, broken = _longest_paths(g, names, break_loops)
    net_names = _net_names(module)
    result = {"device": DEVICE, "estimated_clock_mhz": None, "critical_path": None,
              "blocks": _by_block(builder, g, arrival, pred, net_names, d["clock_uncertainty"]),
              "primitives": _primitives(builder), "unknown_cells": dict(sorted(builder.unknown.items())),
              "broken_loops": broken, "cells": len(cells), "endpoints": len(g.ends)}
    worst = None
    for node, after, cell, pin, net in g.ends:
        a = arrival[node]
        if a != -math.inf and (worst is None or a + after > worst[0]):
            worst = (a + after, node, after, cell, pin, net)
    if worst is not None:
        period = worst[0] + d["clock_uncertainty"]
        result["estimated_clock_mhz"] = round(1000.0 / period, 1)
        outs = builder.outs(worst[3], [p for p, v in builder.dirs[worst[3]].items() if v == "output"])
        end_net = next((net_names[b] for b in outs if b in net_names), None)
        result["critical_path"] = _path(g, arrival, pred, worst, period, names, builder.types,
                                        net_names, end_net)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


def analyze_file(path, **kwargs):
    """:func:`analyze` of a yosys JSON netlist file (as ``write_json`` writes it)."""
    with open(path) as f:
        return analyze(json.load(f), **kwargs)


def estimate_clock(cfg, out_dir, *, block="accelerator", delays=None):
    """Generate ``block`` of the :class:`hw.config.AccelConfig` ``cfg`` into
    ``<out_dir>/verilog``, synthesize it (``<out_dir>/synth``) and return :func:`analyze`'s
    result plus ``block`` and ``synth_seconds``."""
    import gen
    from .report import synthesize
    out_dir = Path(out_dir)
    manifest = gen.generate(cfg, out_dir / "verilog", [block])
    _, seconds = synthesize([out_dir / "verilog" / manifest["modules"][block]["file"]], block,
                            out_dir / "synth", netlist=True)
    result = analyze_file(out_dir / "synth" / f"{block}.netlist.json", delays=delays, break_loops=True)
    return {"block": block, **result, "synth_seconds": round(seconds, 2)}


def format_summary(result, name=""):
    """One line: the estimate, the critical path and the unregistered primitives."""
    prims = ", ".join(f"{t} {c['unregistered']}/{c['total']}" for t, c in result["primitives"].items()
                      if c["total"])
    path = result["critical_path"]
    if path is None:
        text = "no register-to-register path"
    else:
        levels = path["logic_levels"]
        text = (f"~{result['estimated_clock_mhz']:.0f} MHz ({path['delay_ns']:.2f} ns, "
                f"{levels} logic level{'s' * (levels != 1)}, {path['nets']} nets: "
                f"{path['start_type']} {path['start_net'] or path['start']} -> "
                f"{path['end_type']} {path['end_net'] or path['end']})")
    line = f"{name + ': ' if name else ''}{text}"
    if prims:
        line += f"; without internal output registers: {prims}"
    if result["unknown_cells"]:
        line += f"; unknown cells (one LUT delay each): {result['unknown_cells']}"
    if result["broken_loops"]:
        line += f"; {result['broken_loops']} combinational loop cut(s)"
    return line


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gen.timing",
                                     description="Estimate the clock of yosys-mapped UltraScale+ netlists.")
    parser.add_argument("netlist", nargs="+", help="yosys JSON netlist (write_json)")
    parser.add_argument("--top", help="top module (default: the marked or only one)")
    parser.add_argument("--net-ns", type=float, help=f"delay of a routed net (default {DELAYS['net']})")
    parser.add_argument("--break-loops", action="store_true", help="cut combinational loops")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    args = parser.parse_args(argv)
    delays = {"net": args.net_ns} if args.net_ns is not None else None
    for path in args.netlist:
        result = analyze_file(path, top=args.top, delays=delays, break_loops=args.break_loops)
        if args.json:
            print(json.dumps(result, indent=2))
            continue
        print(format_summary(result, Path(path).name))
        for step in (result["critical_path"] or {}).get("cells", []):
            print(f"  {step['at_ns']:7.3f} ns  {step['type']:<9} {step.get('net', step['name'])}")
        slow = [f"{b} {v['estimated_clock_mhz']:.0f}" for b, v in result["blocks"].items()]
        print(f"  by block (MHz): {', '.join(slow[:12])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
