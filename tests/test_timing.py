"""Clock estimate: hand-built netlists with hand-computed delays, and a real synthesis."""

import math
import time

import pytest

from gen import report, timing
from gen.timing import DELAYS as D
from hw.config import AccelConfig

DIRS = {
    "FDRE": {"C": "input", "CE": "input", "D": "input", "R": "input", "Q": "output"},
    "MUXF7": {"I0": "input", "I1": "input", "S": "input", "O": "output"},
    "CARRY8": {"CI": "input", "CI_TOP": "input", "DI": "input", "S": "input", "O": "output", "CO": "output"},
    "CARRY4": {"CI": "input", "CYINIT": "input", "DI": "input", "S": "input", "O": "output", "CO": "output"},
}
CLK, CE, RST = 2, 3, 4                  # top-level inputs: no timing starts


class Netlist:
    """A yosys JSON netlist built cell by cell (bits are ints; "0" / "1" constants)."""

    def __init__(self):
        self.cells, self.next_bit = {}, 100

    def bits(self, n=1):
        self.next_bit += n
        return list(range(self.next_bit - n, self.next_bit))

    def cell(self, name, ctype, conns, params=None, dirs=None):
        self.cells[name] = {"type": ctype, "parameters": params or {}, "attributes": {},
                            "port_directions": dirs or DIRS[ctype], "connections": conns}

    def ff(self, name, d, q=None):
        q = q if q is not None else self.bits()[0]
        self.cell(name, "FDRE", {"C": [CLK], "CE": [CE], "R": [RST], "D": [d], "Q": [q]})
        return q

    def lut(self, name, ins):
        o = self.bits()[0]
        dirs = {**{f"I{k}": "input" for k in range(len(ins))}, "O": "output"}
        self.cell(name, f"LUT{len(ins)}", {**{f"I{k}": [b] for k, b in enumerate(ins)}, "O": [o]},
                  {"INIT": "0" * (1 << len(ins))}, dirs)
        return o

    def json(self):
        ports = {"clk": {"direction": "input", "bits": [CLK]}, "ce": {"direction": "input", "bits": [CE]},
                 "rst": {"direction": "input", "bits": [RST]}}
        return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                    "ports": ports, "cells": self.cells, "netnames": {}}}}


def close(result, ns):
    """The estimate equals ``ns`` (plus the clock uncertainty) to the 0.1 MHz rounding."""
    return result["estimated_clock_mhz"] == pytest.approx(1000.0 / (ns + D["clock_uncertainty"]), abs=0.06)


def test_ff_lut_lut_ff():
    n = Netlist()
    q = n.ff("src", n.bits()[0])
    o = n.lut("l2", [n.lut("l1", [q, n.ff("other", n.bits()[0])]), q, q])
    n.ff("dst", o)
    r = timing.analyze(n.json())
    expected = D["ff_clk_to_q"] + 3 * D["net"] + 2 * D["lut"] + D["ff_setup"]
    assert close(r, expected)
    path = r["critical_path"]
    assert path["start"] in ("src", "other") and path["end"] == "dst" and path["end_pin"] == "D"
    assert path["types"] == ["FDRE", "LUT2", "LUT3", "FDRE"]
    assert path["logic_levels"] == 2 and path["nets"] == 3
    assert path["delay_ns"] == pytest.approx(expected + D["clock_uncertainty"], abs=1e-3)
    assert path["cells"][-1]["at_ns"] == pytest.approx(expected, abs=1e-3)
    assert r["unknown_cells"] == {} and r["broken_loops"] == 0
    assert r["primitives"]["DSP48E2"] == {"total": 0, "unregistered": 0, "unregistered_with_logic": 0,
                                          "inputs_unregistered": 0}


def test_ports_are_not_timed():
    """A LUT fed only by top-level inputs starts nothing; no register path, no estimate."""
    n = Netlist()
    n.ff("dst", n.lut("l", [CE, RST]))
    r = timing.analyze(n.json())
    assert r["estimated_clock_mhz"] is None and r["critical_path"] is None


@pytest.mark.parametrize("ctype,width", [("CARRY8", 8), ("CARRY4", 4)])
def test_carry_chain(ctype, width):
    """LUT -> S[0] of the first block -> CO -> CI of the second -> its top O -> FF."""
    n = Netlist()
    s0 = n.lut("l", [n.ff("src", n.bits()[0]), n.ff("src2", n.bits()[0])])
    co1, o1, co2, o2 = n.bits(width), n.bits(width), n.bits(width), n.bits(width)
    cin = {"CI_TOP": ["0"]} if ctype == "CARRY8" else {"CYINIT": ["0"]}
    n.cell("c1", ctype, {"CI": ["0"], **cin, "DI": ["0"] * width, "S": [s0] + ["1"] * (width - 1),
                         "CO": co1, "O": o1})
    n.cell("c2", ctype, {"CI": [co1[-1]], **cin, "DI": ["0"] * width, "S": ["1"] * width,
                         "CO": co2, "O": o2})
    n.ff("dst", o2[-1])
    r = timing.analyze(n.json())
    expected = (D["ff_clk_to_q"] + D["net"] + D["lut"] + D["net_local"] + D["carry_s_to_co"]
                + D["carry_cascade"] + D["carry_ci_to_o"] + D["net"] + D["ff_setup"])
    assert close(r, expected)
    assert r["critical_path"]["types"] == ["FDRE", "LUT2", ctype, ctype, "FDRE"]
    assert r["critical_path"]["logic_levels"] == 3 and r["critical_path"]["nets"] == 2


def test_muxf7():
    n = Netlist()
    a = n.lut("l", [n.ff("src", n.bits()[0])] * 1)
    o = n.bits()[0]
    n.cell("m", "MUXF7", {"I0": [a], "I1": ["0"], "S": [n.ff("sel", n.bits()[0])], "O": [o]})
    n.ff("dst", o)
    r = timing.analyze(n.json())
    via_lut = D["ff_clk_to_q"] + D["net"] + D["lut"] + D["muxf_data"] + D["net"] + D["ff_setup"]
    via_s = D["ff_clk_to_q"] + D["net"] + D["muxf_select"] + D["net"] + D["ff_setup"]
    assert close(r, max(via_lut, via_s))


def dsp(n, name, params, a, b, p):
    dirs = {"A": "input", "B": "input", "C": "input", "CEP": "input", "CLK": "input",
            "P": "output"}
    n.cell(name, "DSP48E2", {"A": a, "B": b, "C": ["0"] * 48, "CEP": [CE], "CLK": [CLK], "P": p},
           params, dirs)


REGS = {"AREG": 1, "BREG": 1, "MREG": 1, "PREG": 1}


@pytest.mark.parametrize("regs", [0, 1])
def test_dsp(regs):
    """FFs -> A, B; P -> FF. Unregistered: the whole multiply-add between two routed nets;
    registered: the worst stage is inside (A register -> multiplier -> MREG)."""
    n = Netlist()
    a = [n.ff(f"a{k}", n.bits()[0]) for k in range(8)]
    b = [n.ff(f"b{k}", n.bits()[0]) for k in range(8)]
    p = n.bits(48)
    params = {k: f"{regs:032b}" for k in REGS} | {"USE_MULT": "MULTIPLY"}
    dsp(n, "mul", params, a + ["0"] * 22, b + ["0"] * 10, p)
    for k in range(17):
        n.ff(f"p{k}", p[k])
    r = timing.analyze(n.json())
    if regs:
        expected = D["dsp_clk_to_q"] + D["dsp_preadd_bypass"] + D["dsp_mult"] + D["dsp_setup"]
        assert r["critical_path"]["types"] == ["DSP48E2"] and r["critical_path"]["logic_levels"] == 0
    else:
        expected = (D["ff_clk_to_q"] + D["net"] + D["dsp_in"] + D["dsp_preadd_bypass"] + D["dsp_mult"]
                    + D["dsp_alu"] + D["dsp_out"] + D["net"] + D["ff_setup"])
        assert r["critical_path"]["types"] == ["FDRE", "DSP48E2", "FDRE"]
        assert r["critical_path"]["logic_levels"] == 1
    assert close(r, expected)
    # P drives flip-flops only: a register the DSP could absorb, no logic in between.
    assert r["primitives"]["DSP48E2"] == {"total": 1, "unregistered": 1 - regs, "unregistered_with_logic": 0,
                                          "inputs_unregistered": 1 - regs}


def test_dsp_with_logic_after_p():
    n = Netlist()
    p = n.bits(48)
    dsp(n, "mul", {"MREG": f"{1:032b}", "PREG": f"{0:032b}"}, [n.ff("a", n.bits()[0])], ["0"], p)
    n.ff("dst", n.lut("l", [p[0], p[1]]))
    r = timing.analyze(n.json())
    assert r["primitives"]["DSP48E2"] == {"total": 1, "unregistered": 1, "unregistered_with_logic": 1,
                                          "inputs_unregistered": 0}
    # AREG, BREG default to 1 (UG974) when yosys leaves them out.
    expected = D["dsp_clk_to_q"] + D["dsp_alu"] + D["dsp_out"] + D["net"] + D["lut"] + D["net"] + D["ff_setup"]
    assert close(r, expected)


@pytest.mark.parametrize("fmax,params", [
    (775, {**REGS, "ADREG": 1}),
    (544, {**REGS, "MREG": 0}),
    (410, {**REGS, "MREG": 0, "ADREG": 0, "AMULTSEL": "AD", "DREG": 1}),
])
def test_dsp_calibration(fmax, params):
    """The DSP48E2 stages reproduce DS925's -2 DSP48 FMAX table within 5%: every register,
    FMAX_MULT_NOMREG, FMAX_NOPIPELINEREG (through the pre-adder)."""
    n = Netlist()
    params = {k: (v if isinstance(v, str) else f"{v:032b}") for k, v in params.items()}
    dsp(n, "d", params, [n.bits()[0]], [n.bits()[0]], n.bits(48))
    n.cells["d"]["connections"]["D"] = [n.bits()[0]]
    n.cells["d"]["port_directions"]["D"] = "input"
    r = timing.analyze(n.json(), delays={"clock_uncertainty": 0.0})
    assert r["estimated_clock_mhz"] == pytest.approx(fmax, rel=0.05)


def bram(n, name, params, addr, dout_a, dout_b, ctype="RAMB36E2"):
    dirs = {"ADDRARDADDR": "input", "CLKARDCLK": "input", "DOUTADOUT": "output", "DOUTBDOUT": "output"}
    n.cell(name, ctype, {"ADDRARDADDR": addr, "CLKARDCLK": [CLK], "DOUTADOUT": dout_a,
                         "DOUTBDOUT": dout_b}, params, dirs)


@pytest.mark.parametrize("ctype", ["RAMB36E2", "RAMB18E2"])
@pytest.mark.parametrize("reg", [0, 1])
def test_bram(ctype, reg):
    """Address from a FF; port B's data through a LUT into a FF; port A unused."""
    n = Netlist()
    dout_a, dout_b = n.bits(4), n.bits(4)
    bram(n, "ram", {"DOA_REG": f"{0:032b}", "DOB_REG": f"{reg:032b}"},
         [n.ff("addr", n.bits()[0])], dout_a, dout_b, ctype)
    n.ff("dst", n.lut("l", dout_b[:2]))
    r = timing.analyze(n.json())
    cko = D["bram_clk_to_q_reg"] if reg else D["bram_clk_to_q"]
    out_path = cko + D["net"] + D["lut"] + D["net"] + D["ff_setup"]
    in_path = D["ff_clk_to_q"] + D["net"] + D["bram_setup"]
    assert close(r, max(out_path, in_path))
    assert r["critical_path"]["start"] == "ram" and r["critical_path"]["end"] == "dst"
    # Port A is unregistered but unused: only port B counts.
    assert r["primitives"][ctype] == {"total": 1, "unregistered": 1 - reg, "unregistered_with_logic": 1 - reg}


def test_unknown_cells():
    """An unknown combinational cell costs one LUT delay; one with a clock pin is a register.
    Both are counted."""
    n = Netlist()
    o = n.bits()[0]
    n.cell("x", "MYSTERY", {"I": [n.ff("src", n.bits()[0])], "O": [o]}, dirs={"I": "input", "O": "output"})
    q = n.bits()[0]
    n.cell("r", "MYSTERYREG", {"CLK": [CLK], "D": [o], "Q": [q]},
           dirs={"CLK": "input", "D": "input", "Q": "output"})
    n.ff("dst", q)
    r = timing.analyze(n.json())
    assert r["unknown_cells"] == {"MYSTERY": 1, "MYSTERYREG": 1}
    assert close(r, D["ff_clk_to_q"] + 2 * D["net"] + D["lut"] + D["ff_setup"])
    assert r["critical_path"]["types"] == ["FDRE", "MYSTERY", "MYSTERYREG"]
    assert "unknown cells" in timing.format_summary(r)


def test_combinational_loop():
    n = Netlist()
    loop = n.bits()[0]
    a = n.lut("a", [n.ff("src", n.bits()[0]), loop])
    n.cells["b"] = {**n.cells["a"], "connections": {"I0": [a], "I1": [CE], "O": [loop]}}
    n.ff("dst", a)
    with pytest.raises(timing.CombinationalLoop, match="break_loops") as info:
        timing.analyze(n.json())
    assert set(info.value.cells) >= {"a", "b"}
    r = timing.analyze(n.json(), break_loops=True)
    assert r["broken_loops"] >= 1 and math.isfinite(r["estimated_clock_mhz"])


def test_delays_override_and_speed():
    """``delays`` overrides a constant; a 60,000-cell netlist is analyzed in seconds."""
    n = Netlist()
    q = n.ff("src", n.bits()[0])
    n.ff("dst", n.lut("l", [q]))
    slow = timing.analyze(n.json(), delays={"net": 1.0})
    assert close(slow, D["ff_clk_to_q"] + 2 * 1.0 + D["lut"] + D["ff_setup"])

    big = Netlist()
    regs = [big.ff(f"r{k}", big.bits()[0]) for k in range(10_000)]
    for k in range(10_000):
        x = big.lut(f"x{k}", [regs[k], regs[k - 1], regs[k - 7]])
        y = big.lut(f"y{k}", [x, regs[k - 3]])
        big.ff(f"f{k}", big.lut(f"z{k}", [y, x, regs[k - 5]]))
        for j in range(2):
            big.lut(f"w{k}_{j}", [y, regs[k - j - 11]])
    start = time.perf_counter()
    r = timing.analyze(big.json())
    assert time.perf_counter() - start < 10
    assert r["cells"] == 70_000 and r["critical_path"]["logic_levels"] == 3


@pytest.fixture(scope="module")
def dpe_estimate(tmp_path_factory):
    """The DPE through gen.timing.estimate_clock (a real yosys synthesis, a few seconds)."""
    report.yosys_command()
    return timing.estimate_clock(AccelConfig(), tmp_path_factory.mktemp("timing"), block="dpe")


REGISTERED = {"FDRE", "FDSE", "FDCE", "FDPE", "DSP48E2", "RAMB36E2", "RAMB18E2", "URAM288"}


def test_dpe_estimate(dpe_estimate):
    r = dpe_estimate
    assert r["block"] == "dpe" and r["synth_seconds"] > 0
    assert 0 < r["estimated_clock_mhz"] < 2000 and math.isfinite(r["estimated_clock_mhz"])
    path = r["critical_path"]
    assert path["start_type"] in REGISTERED and path["end_type"] in REGISTERED
    assert path["delay_ns"] == pytest.approx(1000 / r["estimated_clock_mhz"], abs=0.01)
    assert r["unknown_cells"] == {} and r["broken_loops"] == 0
    # Nine u8 x s8 products; their registers are in the fabric right after each DSP.
    assert r["primitives"]["DSP48E2"]["total"] == 9
    assert 0 <= r["primitives"]["DSP48E2"]["unregistered"] <= 9
    assert r["primitives"]["DSP48E2"]["unregistered_with_logic"] == 0


def test_report_has_clock(tmp_path):
    """report_component adds the estimate per module and format_table prints it."""
    from hw.datapath.dpe import DPE
    result = report.report_component(DPE(), "dpe", tmp_path)
    assert result["modules"]["dpe"]["DSP"] == 9                 # resource keys unchanged
    mhz = result["estimated_clock_mhz"]["dpe"]
    assert mhz > 0 and math.isfinite(mhz)
    assert result["critical_path"]["dpe"]["end_type"] in REGISTERED
    assert set(result["unregistered_primitives"]["dpe"]) == {"DSP48E2", "RAMB36E2", "RAMB18E2", "URAM288"}
    assert result["target_mhz"] == 200
    assert (tmp_path / "synth" / "dpe.netlist.json").exists()
    table = report.format_table(result)
    assert f"clock dpe: ~{mhz:.0f} MHz" in table and "DSP48E2" in table
