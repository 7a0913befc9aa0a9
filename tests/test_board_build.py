"""ZCU104 Vivado build tree: files, Tcl syntax and flow (Vivado commands stubbed in
tclsh), PS configuration, address map, LED pins, and Verilator lint of the wrapper."""

import functools
import json
import os
import re
import shutil
import subprocess

import pytest

import boards.zcu104 as zcu104
from boards.zcu104 import BOARD_PART, PART, ZCU104Platform, block_design_tcl, build_plan
from gen.lint import LINT_FLAGS, verilator_binary
from hw.config import AccelConfig
from hw.contract import register_map

TCLSH = shutil.which("tclsh")
needs_tclsh = pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")
TCL_FILES = ["bd.tcl", "build.tcl", "constraints/dpegen.xdc"]


@pytest.fixture(scope="module")
def accel_verilog():
    """The default Accelerator's Verilog, converted once for the module."""
    from gen.convert import convert

    from hw.top import Accelerator
    return convert(Accelerator(AccelConfig()), "accelerator")


@pytest.fixture(scope="module")
def plan(tmp_path_factory, accel_verilog):
    out = tmp_path_factory.mktemp("zcu104")
    files = build_plan(AccelConfig(), clock_mhz=200, out_dir=out, accelerator_verilog=accel_verilog)
    return out, files


def _stub_harness(tmp_path, script, board_part_installed, run_dir="", hwh=""):
    """Source ``script`` in tclsh with every Vivado command stubbed; returns the commands
    (each a list of words) in call order, and the process result."""
    harness = tmp_path / "harness.tcl"
    harness.write_text(r"""
set calls {}
proc record {words} { global calls; lappend calls $words }
proc unknown {args} { record $args; return "" }
proc get_board_parts {args} {
    record [concat get_board_parts $args]
    if {$::board_part_installed} { return [lindex $args end] }
    return ""
}
proc get_property {name args} {
    record [concat get_property $name $args]
    if {$name eq "PROGRESS"} { return "100%" }
    if {$name eq "DIRECTORY"} { return $::run_dir }
    return ""
}
proc get_files {args} {
    record [concat get_files $args]
    if {[string match {*.hwh*} $args]} { return $::hwh }
    return [lindex $args end]
}
proc create_bd_cell {args} { record [concat create_bd_cell $args]; return "/[lindex $args end]" }
foreach {cmd tag} {get_bd_pins pin get_bd_intf_pins intf get_bd_ports port
                   get_bd_addr_spaces space get_bd_addr_segs seg} {
    proc $cmd {args} [string map [list TAG $tag] {
        set args [lsearch -all -inline -not -exact $args -quiet]
        set args [lsearch -all -inline -not -exact $args -of_objects]
        return "TAG:[lindex $args end]"
    }]
}
set board_part_installed [lindex $argv 0]
set run_dir [lindex $argv 1]
set hwh [lindex $argv 2]
set script [lindex $argv 3]
set argv {}
if {[catch {source $script} message]} { puts "ERROR: $message"; exit 3 }
if {[info procs dpegen_create_bd] ne "" && [file tail $script] eq "bd.tcl"} {
    dpegen_create_bd dpegen_bd $board_part_installed
}
foreach c $calls { puts "CALL [list $c]" }
""")
    proc = subprocess.run([TCLSH, str(harness), str(int(board_part_installed)), str(run_dir),
                           str(hwh), str(script)], capture_output=True, text=True, timeout=60)
    calls = []
    for line in proc.stdout.splitlines():
        if line.startswith("CALL "):
            calls.append(_tcl_words(line[5:]))
    return calls, proc


def _tcl_words(text):
    """Split one Tcl list element (the CALL line) into its words with tclsh-free parsing
    of the simple forms the stub prints: {a b {c d}} -> ['a', 'b', 'c d']."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    words, depth, cur = [], 0, ""
    for ch in text:
        if ch == "{":
            if depth:
                cur += ch
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth:
                cur += ch
        elif ch == " " and depth == 0:
            if cur:
                words.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


def test_tree_complete(plan):
    out, files = plan
    for name in ["rtl/accelerator.v", "rtl/dpegen_axi.v", "rtl/dpegen_status_led.v",
                 "constraints/dpegen.xdc", "bd.tcl", "build.tcl", "build.sh", "manifest.json",
                 "dpegen_regs.h"]:
        assert (out / name).is_file(), name
        assert files[name] == out / name
    assert os.access(out / "build.sh", os.X_OK)
    assert "vivado -mode batch" in (out / "build.sh").read_text()
    assert "settings64.sh" in (out / "build.sh").read_text()
    assert (out / "rtl/accelerator.v").read_text().count("module accelerator(") == 1


@needs_tclsh
def test_tcl_complete(plan):
    """Every Tcl file is a complete script (balanced braces, brackets, quotes)."""
    out, _ = plan
    checker = out.parent / "check_complete.tcl"
    checker.write_text("foreach f $argv { set h [open $f]; set t [read $h]; close $h\n"
                       "  if {![info complete $t]} { puts \"INCOMPLETE $f\"; exit 1 }\n"
                       "  puts \"OK $f\" }\n")
    proc = subprocess.run([TCLSH, str(checker)] + [str(out / f) for f in TCL_FILES],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("OK ") == len(TCL_FILES)


@needs_tclsh
@pytest.mark.parametrize("installed", [True, False])
def test_bd_flow_stubbed(plan, tmp_path, installed):
    """bd.tcl runs in tclsh with stubbed Vivado commands; its calls are the design."""
    out, _ = plan
    calls, proc = _stub_harness(tmp_path, out / "bd.tcl", installed)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = [c[0] for c in calls]
    assert names[0] == "create_bd_design" and calls[0][1] == "dpegen_bd"
    assert ("apply_bd_automation" in names) == installed
    if installed:
        auto = calls[names.index("apply_bd_automation")]
        assert "xilinx.com:bd_rule:zynq_ultra_ps_e" in auto
        assert 'apply_board_preset "1"' in auto
        assert names.index("apply_bd_automation") < names.index("set_property")
    cells = {c[-1]: c for c in calls if c[0] == "create_bd_cell"}
    assert cells["zynq_ultra_ps_e_0"][cells["zynq_ultra_ps_e_0"].index("-vlnv") + 1] == \
        "xilinx.com:ip:zynq_ultra_ps_e"
    accel = cells["dpegen_0"]
    assert accel[accel.index("-type") + 1] == "module"
    assert accel[accel.index("-reference") + 1] == "dpegen_axi"
    for cell in ("proc_sys_reset_0", "smartconnect_mem", "smartconnect_ctl", "axi_intc_0",
                 "status_led_0"):
        assert cell in cells
    intf = {tuple(c[1:]) for c in calls if c[0] == "connect_bd_intf_net"}
    assert intf == {
        ("intf:/dpegen_0/m_axi", "intf:/smartconnect_mem/S00_AXI"),
        ("intf:/smartconnect_mem/M00_AXI", "intf:/zynq_ultra_ps_e_0/S_AXI_HP0_FPD"),
        ("intf:/zynq_ultra_ps_e_0/M_AXI_HPM0_LPD", "intf:/smartconnect_ctl/S00_AXI"),
        ("intf:/smartconnect_ctl/M00_AXI", "intf:/dpegen_0/s_axil"),
        ("intf:/smartconnect_ctl/M01_AXI", "intf:/axi_intc_0/s_axi"),
    }
    nets = {c[1]: set(c[2:]) for c in calls if c[0] == "connect_bd_net"}
    clocked = nets["pin:/zynq_ultra_ps_e_0/pl_clk0"]
    for pin in ("zynq_ultra_ps_e_0/maxihpm0_lpd_aclk", "zynq_ultra_ps_e_0/saxihp0_fpd_aclk",
                "dpegen_0/aclk", "proc_sys_reset_0/slowest_sync_clk", "smartconnect_mem/aclk",
                "smartconnect_ctl/aclk", "axi_intc_0/s_axi_aclk", "status_led_0/clk"):
        assert f"pin:/{pin}" in clocked, pin
    assert nets["pin:/zynq_ultra_ps_e_0/pl_resetn0"] == {"pin:/proc_sys_reset_0/ext_reset_in"}
    assert "pin:/dpegen_0/aresetn" in nets["pin:/proc_sys_reset_0/peripheral_aresetn"]
    assert "pin:/axi_intc_0/intr" in nets["pin:/dpegen_0/irq"]
    assert nets["pin:/axi_intc_0/irq"] == {"pin:/zynq_ultra_ps_e_0/pl_ps_irq0"}
    assert nets["pin:/status_led_0/led"] == {"port:status_led"}
    addr = {c[-2] if c[-1] == "-force" else c[-1]: c for c in calls if c[0] == "assign_bd_address"}
    regs = addr["seg:intf:/dpegen_0/s_axil"]
    assert int(regs[regs.index("-offset") + 1], 0) == 0x8000_0000
    assert int(regs[regs.index("-range") + 1], 0) >= register_map().size
    assert regs[regs.index("-target_address_space") + 1] == "space:/zynq_ultra_ps_e_0/Data"
    ddr = addr["seg:/zynq_ultra_ps_e_0/SAXIGP2/HP0_DDR_LOW"]
    assert int(ddr[ddr.index("-offset") + 1], 0) == 0
    assert int(ddr[ddr.index("-range") + 1], 0) == 2 << 30
    assert ddr[ddr.index("-target_address_space") + 1] == "space:/dpegen_0/m_axi"
    assert "seg:intf:/axi_intc_0/s_axi" in addr
    assert names[-2:] == ["validate_bd_design", "save_bd_design"]


@needs_tclsh
@pytest.mark.parametrize("installed", [True, False])
def test_build_flow_stubbed(plan, tmp_path, installed):
    """build.tcl runs in tclsh with stubbed Vivado commands down to the exports."""
    out, _ = plan
    tree = tmp_path / "tree"
    shutil.copytree(out, tree)
    run_dir = tmp_path / "impl_1"
    run_dir.mkdir()
    (run_dir / "dpegen_bd_wrapper.bit").write_bytes(b"bit")
    hwh = tmp_path / "dpegen_bd.hwh"
    hwh.write_text("<hwh/>")
    calls, proc = _stub_harness(tmp_path, tree / "build.tcl", installed, run_dir, hwh)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = [c[0] for c in calls]
    project = calls[names.index("create_project")]
    assert project[project.index("-part") + 1] == PART
    assert ["get_board_parts", "-quiet", BOARD_PART] in calls
    board = [c for c in calls if c[:2] == ["set_property", "board_part"]]
    assert (board != []) == installed
    if installed:
        assert board[0][2] == BOARD_PART
    assert ("WARNING: board part" in proc.stdout) != installed
    order = ["create_project", "add_files", "update_compile_order", "create_bd_design",
             "validate_bd_design", "generate_target", "make_wrapper", "launch_runs",
             "wait_on_run", "write_hw_platform"]
    positions = [names.index(n) for n in order]
    assert positions == sorted(positions), list(zip(order, positions))
    runs = [c for c in calls if c[0] == "launch_runs"]
    assert runs[0][1] == "synth_1" and runs[1][1] == "impl_1"
    assert runs[1][runs[1].index("-to_step") + 1] == "write_bitstream"
    assert all(r[r.index("-jobs") + 1] == "4" for r in runs)
    assert (tree / "dpegen.bit").read_bytes() == b"bit"
    assert (tree / "dpegen.hwh").read_text() == "<hwh/>"


@needs_tclsh
def test_build_flow_stops_without_bitstream(plan, tmp_path):
    out, _ = plan
    calls, proc = _stub_harness(tmp_path, out / "build.tcl", True, tmp_path / "nowhere", "")
    assert proc.returncode == 3
    assert "bitstream not found" in proc.stdout


def _ps_props(tcl):
    return dict(re.findall(r"CONFIG\.(PSU__\w+) \{([^}]*)\}", tcl))


@pytest.mark.parametrize("width,hp_width", [(64, 64), (128, 128), (256, 128), (512, 128)])
def test_hp_port_width(width, hp_width):
    props = _ps_props(block_design_tcl(AccelConfig(axi_data_width=width)))
    assert props["PSU__SAXIGP2__DATA_WIDTH"] == str(hp_width)
    assert props["PSU__USE__S_AXI_GP2"] == "1"


@pytest.mark.parametrize("mhz", [100, 150, 200, 250])
def test_ps_configuration(mhz):
    props = _ps_props(block_design_tcl(AccelConfig(), clock_mhz=mhz))
    assert props["PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == str(mhz)
    assert props["PSU__FPGA_PL0_ENABLE"] == "1"
    assert props["PSU__USE__M_AXI_GP2"] == "1"       # M_AXI_HPM0_LPD
    assert props["PSU__USE__M_AXI_GP0"] == "0"       # M_AXI_HPM0_FPD off
    assert props["PSU__USE__M_AXI_GP1"] == "0"       # M_AXI_HPM1_FPD off
    assert props["PSU__USE__IRQ0"] == "1"
    assert props["PSU__MAXIGP2__DATA_WIDTH"] == "32"


def test_plan_config_and_address_map(plan):
    out, _ = plan
    bd = (out / "bd.tcl").read_text()
    assert "-offset 0x80000000 -range 0x1000" in bd
    assert re.search(r"-offset 0x0+ -range 0x80000000 .*\n.*HP0_DDR_LOW", bd)
    assert "pl_ps_irq0" in bd and "$accel/irq" in bd
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["part"] == PART
    assert manifest["config"] == AccelConfig().to_dict()
    assert manifest["clock_mhz"] == 200
    assert manifest["address_map"]["registers"]["base"] == 0x8000_0000
    assert manifest["address_map"]["registers"]["range"] >= register_map().size
    assert manifest["register_map"] == register_map().to_json()


def test_led_constraints_from_platform(plan):
    out, _ = plan
    xdc = (out / "constraints/dpegen.xdc").read_text()
    platform = ZCU104Platform()
    for i in range(2):
        resource = platform.lookup("led", i)
        pin = resource.ios[0].names[0]
        assert f"set_property PACKAGE_PIN {pin} [get_ports {{status_led[{i}]}}]" in xdc
        assert (f"set_property IOSTANDARD {resource.attrs['IOSTANDARD']} "
                f"[get_ports {{status_led[{i}]}}]") in xdc
    assert len(re.findall("PACKAGE_PIN", xdc)) == 2


def test_wrapper_ports(plan):
    from hw.dma.axi import xilinx_port_names
    from hw.top import Accelerator
    out, _ = plan
    text = (out / "rtl/dpegen_axi.v").read_text()
    accel = Accelerator(AccelConfig())
    accel._MustUse__silence = True          # inspected for its ports only
    names = xilinx_port_names(accel)
    for amaranth_name, xilinx_name in names.items():
        assert re.search(rf"\b{xilinx_name}\b", text), xilinx_name
        assert f".{amaranth_name}({xilinx_name})" in text
    assert "ASSOCIATED_BUSIF m_axi:s_axil" in text
    assert "SENSITIVITY LEVEL_HIGH" in text
    assert ".rst(~aresetn)" in text


def _lint(paths, top):
    proc = subprocess.run([verilator_binary(), *LINT_FLAGS, *map(str, paths), "--top-module", top],
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_wrapper_lint(plan):
    out, _ = plan
    code, messages = _lint([out / "rtl/accelerator.v", out / "rtl/dpegen_axi.v"], "dpegen_axi")
    assert code == 0, messages


@pytest.mark.parametrize("mhz", [200, 187.5])
def test_status_led_lint(tmp_path, mhz):
    path = tmp_path / "dpegen_status_led.v"
    path.write_text(zcu104.status_led_verilog(mhz))
    code, messages = _lint([path], "dpegen_status_led")
    assert code == 0, messages
    assert f"32'd{int(mhz * 1e6) // 2};" in path.read_text()


def test_plan_rejects_bad_clock(tmp_path, accel_verilog):
    for bad in (0, 1000, "200", True):
        with pytest.raises(ValueError, match="clock_mhz"):
            build_plan(AccelConfig(), clock_mhz=bad, out_dir=tmp_path, accelerator_verilog=accel_verilog)


def test_cli_without_vivado(tmp_path, monkeypatch, capsys, accel_verilog):
    """Without --plan-only and no vivado on PATH: a clear message, exit 1, full tree."""
    monkeypatch.setattr(zcu104, "build_plan",
                        functools.partial(zcu104.build_plan, accelerator_verilog=accel_verilog))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "tree"
    assert zcu104.main(["--kp", "3", "--yp", "4", "--clock-mhz", "150", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Vivado 2022.1 or newer" in err and "settings64.sh" in err and str(out) in err
    assert (out / "build.tcl").is_file() and (out / "bd.tcl").is_file()
    assert _ps_props((out / "bd.tcl").read_text())["PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == "150"


def test_cli_plan_only(tmp_path, monkeypatch, capsys, accel_verilog):
    monkeypatch.setattr(zcu104, "build_plan",
                        functools.partial(zcu104.build_plan, accelerator_verilog=accel_verilog))
    out = tmp_path / "tree"
    assert zcu104.main(["--plan-only", "--out", str(out)]) == 0
    assert (out / "build.sh").is_file()
    assert "build tree written" in capsys.readouterr().out
