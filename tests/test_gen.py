import json

import pytest

import gen
from gen.__main__ import main
from gen.lint import lint
from hw.config import AccelConfig
from hw.datapath.residual_add import ResidualAdd


def test_generate_default_config(tmp_path):
    """The default output: the accelerator, its manifest with the register map, a C header."""
    manifest = gen.generate(AccelConfig(), tmp_path)
    assert set(manifest["modules"]) == set(gen.DEFAULT_BLOCKS) == {"accelerator"}
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["config"] == AccelConfig().to_dict()
    names = {p["name"] for p in on_disk["modules"]["accelerator"]["ports"]}
    assert {"s_axil__awaddr", "m_axi__arvalid", "m_axi__wstrb", "irq"} <= names
    regs = {r["name"]: r for r in on_disk["register_map"]["registers"]}
    assert regs["MAGIC"]["offset"] == 0 and regs["CFG_KP"]["reset"] == 3
    header = (tmp_path / "dpegen_regs.h").read_text()
    for name, reg in regs.items():
        assert f"#define DPEGEN_{name}" in header and f"0x{reg['offset']:03x}u" in header
    for name, module in on_disk["modules"].items():
        text = (tmp_path / module["file"]).read_text()
        assert f"module {name}(" in text
        for port in module["ports"]:
            assert port["name"] in text
        ok, messages = lint(tmp_path / module["file"], top=name)
        assert ok, messages


@pytest.mark.parametrize("blocks", [["dpe", "dpe_array", "requant", "line_buffer"],
                                    ["axi_reader", "axi_writer"]])
def test_blocks_lint(tmp_path, blocks):
    manifest = gen.generate(AccelConfig(), tmp_path, blocks)
    for name, module in manifest["modules"].items():
        ok, messages = lint(tmp_path / module["file"], top=name)
        assert ok, messages


def test_array_ports_follow_config(tmp_path):
    manifest = gen.generate(AccelConfig(kp=2, yp=5), tmp_path, ["dpe_array"])
    widths = {p["name"]: p["width"] for p in manifest["modules"]["dpe_array"]["ports"]}
    assert widths["weights__payload"] == 2 * 9 * 8
    assert widths["sums__payload"] == 2 * 5 * 20 + 1
    assert manifest["modules"]["dpe_array"]["latency"] == 4


def test_every_block_records_its_latency(tmp_path, monkeypatch):
    """No None in the manifest: an int for a pipelined block (its ``latency``), a dict of
    the parts' latencies for the composites."""
    from hw.dma import AxiReader, AxiWriter
    from hw.datapath.line_buffer import LineBuffer
    from hw.datapath.pointwise_reader import PointwiseReader

    monkeypatch.setattr(gen, "convert", lambda component, name: f"module {name}();\nendmodule\n")
    cfg = AccelConfig()
    modules = gen.generate(cfg, tmp_path, list(gen.BLOCKS))["modules"]
    assert set(modules) == set(gen.BLOCKS)
    for name, module in modules.items():
        value = module["latency"]
        assert value is not None, name
        if isinstance(value, dict):
            assert value and all(isinstance(v, int) and v > 0 for v in value.values()), (name, value)
        else:
            assert isinstance(value, int) and value > 0, (name, value)
    assert modules["line_buffer"]["latency"] == LineBuffer.LATENCY == 3
    assert modules["pointwise_reader"]["latency"] == PointwiseReader.LATENCY == 2
    assert modules["axi_reader"]["latency"] == AxiReader.LATENCY == 4
    assert modules["axi_writer"]["latency"] == AxiWriter.LATENCY == 2
    assert modules["core"]["latency"] == {
        "streaming": 2, "stationary": 2, "line_buffer": 3, "pointwise_reader": 2, "array": 4, "output": 16,
        "iact_packer": 1, "weight_packer": 1, "params_packer": 1, "out_packer": 1,
        "residual_add": ResidualAdd.LATENCY}
    assert modules["accelerator"]["latency"] == {**modules["core"]["latency"],
                                                  "axi_reader": 4, "axi_writer": 2}
    assert json.loads((tmp_path / "manifest.json").read_text())["modules"] == modules


def test_generation_is_reproducible(tmp_path):
    gen.generate(AccelConfig(), tmp_path / "a", ["requant"])
    gen.generate(AccelConfig(), tmp_path / "b", ["requant"])
    assert (tmp_path / "a/requant.v").read_text() == (tmp_path / "b/requant.v").read_text()


def test_unknown_block(tmp_path):
    with pytest.raises(ValueError, match="unknown block 'nope'"):
        gen.generate(AccelConfig(), tmp_path, ["nope"])


def test_cli_rejects_bad_parameter(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--kp", "0", "--out", str(tmp_path)])
    assert "kp must be in [1, 64], got 0" in capsys.readouterr().err


def test_cli_writes_block(tmp_path):
    main(["--kp", "4", "--yp", "2", "--block", "dpe_array", "--out", str(tmp_path)])
    assert (tmp_path / "dpe_array.v").exists()
    assert json.loads((tmp_path / "manifest.json").read_text())["config"]["kp"] == 4


@pytest.mark.parametrize("block", ["requant", "line_buffer", "axi_reader"])
def test_convert_is_amaranths_own_verilog(block):
    """gen.convert writes memory contents row by row; the Verilog is Amaranth's, byte for
    byte (the requantizer's table is a non-zero initial content, the line buffer's banks
    and the DMA FIFO zero ones)."""
    from amaranth.back import verilog

    from gen import BLOCKS
    from gen.convert import convert
    cfg = AccelConfig()
    assert convert(BLOCKS[block](cfg), block) == \
        verilog.convert(BLOCKS[block](cfg), name=block, emit_src=False)
