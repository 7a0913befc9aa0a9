import pytest

from hw.dma import AxiDma, AxiReader, AxiWriter
from host.runtime.sim import runner


@pytest.mark.parametrize("data_width", [64, 128])
def test_dma(data_width):
    runner.run(AxiDma(data_width=data_width, addr_width=32), name=f"axi_dma_{data_width}",
             test_module="sim_tests.dma_tb",
             params={"data_width": data_width, "max_outstanding_reads": 8})


@pytest.mark.parametrize("kwargs", [{"data_width": 96, "addr_width": 32},
                                    {"data_width": 128, "addr_width": 8},
                                    {"data_width": 128, "addr_width": 32, "max_outstanding": 0}])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        AxiReader(**kwargs)
    with pytest.raises(ValueError):
        AxiWriter(**kwargs)


def test_from_config():
    from hw.config import AccelConfig
    cfg = AccelConfig(axi_data_width=256, axi_addr_width=48, max_outstanding_reads=4)
    r = AxiReader.from_config(cfg)
    assert (r.data_width, r.addr_width, r.max_outstanding) == (256, 48, 4)
    assert AxiWriter.from_config(cfg).data_width == 256


def _flat_ports(component):
    return {"__".join(map(str, path)): len(value)
            for path, _, value in component.signature.flatten(component)}


def test_axi_signature_names_match_cocotbext():
    """Every signal cocotbext-axi's AxiBus / AxiLiteBus look for exists, with its width."""
    import cocotbext.axi.axi_channels as full
    import cocotbext.axi.axil_channels as lite
    from amaranth.lib import wiring
    from hw.dma.axi import AXI4LiteSignature, AXI4Signature

    class Both(wiring.Component):
        def __init__(self):
            super().__init__({"m_axi": wiring.Out(AXI4Signature(addr_width=40, data_width=128, id_width=4)),
                              "s_axil": wiring.In(AXI4LiteSignature(addr_width=16))})

        def elaborate(self, platform):
            return None

    ports = _flat_ports(Both())
    for module, prefix, names in ((full, "m_axi", "AW W B AR R"), (lite, "s_axil", "AW W B AR R")):
        for ch in names.split():
            bus = getattr(module, f"Axi{'Lite' if module is lite else ''}{ch}Bus")
            for sig in bus._signals:
                assert f"{prefix}__{sig}" in ports, f"{prefix}__{sig} missing"
            for sig, width in getattr(bus, "_signal_widths", {}).items():
                if f"{prefix}__{sig}" in ports:
                    assert ports[f"{prefix}__{sig}"] == width, sig
    assert ports["m_axi__wstrb"] == 16 and ports["m_axi__arid"] == 4
    assert ports["s_axil__wdata"] == 32 and ports["s_axil__wstrb"] == 4


@pytest.mark.parametrize("kwargs", [{"addr_width": 40, "data_width": 96},
                                    {"addr_width": 8, "data_width": 128},
                                    {"addr_width": 40, "data_width": 128, "id_width": 0}])
def test_axi_signature_validation(kwargs):
    from hw.dma.axi import AXI4Signature
    with pytest.raises(ValueError):
        AXI4Signature(**kwargs)


def test_xilinx_wrapper_lints():
    """The Xilinx-convention wrapper compiles against the generated module (Verilator lint)."""
    import subprocess
    import tempfile
    from pathlib import Path
    from hw.dma.axi import xilinx_port_names, xilinx_wrapper_verilog

    dma = AxiDma(data_width=64, addr_width=32)
    names = xilinx_port_names(dma)
    assert names["m_axi__arvalid"] == "m_axi_arvalid"
    assert names["rd_cmd__payload"] == "rd_cmd_payload"
    inner = runner.to_verilog(AxiDma(data_width=64, addr_width=32), "axi_dma")
    wrapper = xilinx_wrapper_verilog(dma, "axi_dma", "axi_dma_wrapper")
    assert "m_axi_awaddr" in wrapper and ".m_axi__awaddr(m_axi_awaddr)" in wrapper
    root = runner.verilator_env()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "inner.v").write_text(inner)
        (Path(tmp) / "wrapper.v").write_text(wrapper)
        result = subprocess.run([str(root / "bin" / "verilator"), "--lint-only", "-Wno-fatal",
                                 "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE",
                                 "-Wno-UNOPTFLAT", "--top-module", "axi_dma_wrapper",
                                 "wrapper.v", "inner.v"], cwd=tmp, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
