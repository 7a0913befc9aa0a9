"""AMD/Xilinx ZCU104 evaluation board (Zynq UltraScale+ XCZU7EV-2FFVC1156E).

Only the programmable-logic user I/O is described here. Every pin comes from a published
ZCU104 constraint set; the comment next to each resource names its sources:

[litex]  litex-hub/litex-boards, litex_boards/platforms/xilinx_zcu104.py
[ug946]  Xilinx DFX tutorial (UG946) ZCU104 constraints, as published in
         nguyencanhtrung/Dynamic-Function-eXchange,
         labs/lab2_dfx_flow_tcl/lab/ZCU104/Sources/xdc/top_io.xdc
[blink]  GevKeepCoding/BeginnerVivadoProjects, full_led_blink/top.xdc (ZCU104)
[chipyard] Chipyard ZCU104 bring-up GPIO map (BringupGPIOs, package
         chipyard.fpga.zcu104.bringup), which cites the ZCU104 Board User Guide (UG1267)

The LEDs, buttons and DIP switches sit in a 3.3 V HD bank (LVCMOS33 in all sources).

The Vivado build of the accelerator (:func:`build_plan`, ``python -m boards.zcu104``) is
described in that function's docstring.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from amaranth.build import Attrs, Clock, DiffPairs, Resource
from amaranth.vendor import XilinxPlatform
from amaranth_boards.resources import ButtonResources, LEDResources, SwitchResources

__all__ = ["ZCU104Platform", "PART", "BOARD_PART", "REGISTER_BASE", "INTC_BASE",
           "HP_MAX_DATA_WIDTH", "hp_data_width", "ps_config", "led_pins", "wrapper_verilog",
           "status_led_verilog", "block_design_tcl", "build_tcl", "constraints_xdc",
           "build_plan", "VIVADO_MISSING", "main"]

PART = "xczu7ev-ffvc1156-2-e"
BOARD_PART = "xilinx.com:zcu104:part0:1.1"


class ZCU104Platform(XilinxPlatform):
    device = "xczu7ev"
    package = "ffvc1156"
    speed = "2-e"
    default_clk = "clk125"

    resources = [
        # 125 MHz fixed differential clock: F23 (P) / E23 (N), LVDS. [litex] [ug946] [blink]
        Resource("clk125", 0, DiffPairs("F23", "E23", dir="i"), Clock(125e6),
                 Attrs(IOSTANDARD="LVDS")),
        # 300 MHz differential clock of the PL DDR4 bank: AH18 (P) / AH17 (N). [litex]
        Resource("clk300", 0, DiffPairs("AH18", "AH17", dir="i"), Clock(300e6),
                 Attrs(IOSTANDARD="DIFF_SSTL12_DCI")),

        # User LEDs 0..3: D5 D6 A5 B5. [litex] [ug946] [chipyard]; A5 also [blink]
        *LEDResources(pins="D5 D6 A5 B5", attrs=Attrs(IOSTANDARD="LVCMOS33")),
        # Push buttons 0..3: B4 C4 B3 C3. [litex]; B4 also [ug946] (reset button),
        # C3 also [blink] (button input), B3 also [blink] (reset input)
        *ButtonResources(pins="B4 C4 B3 C3", attrs=Attrs(IOSTANDARD="LVCMOS33")),
        # DIP switches 0..3: E4 D4 F5 F4. [litex] [chipyard]
        *SwitchResources(pins="E4 D4 F5 F4", attrs=Attrs(IOSTANDARD="LVCMOS33")),
    ]
    connectors = []


# --------------------------------------------------------------------------------------
# Vivado build of the accelerator: Zynq UltraScale+ PS block design, bitstream, .hwh
# --------------------------------------------------------------------------------------

REGISTER_BASE = 0x8000_0000     # accelerator registers, start of the M_AXI_HPM0_LPD window
INTC_BASE = 0x8001_0000         # AXI interrupt controller (PYNQ takes interrupts through one)
INTC_RANGE = 0x1_0000
DDR_LOW_BASE, DDR_LOW_RANGE = 0x0, 0x8000_0000      # PS DDR below 2 GiB, seen from HP0
HP_MAX_DATA_WIDTH = 128         # S_AXI_HP0_FPD is 32, 64 or 128 bits wide
ACCEL_MODULE = "accelerator"    # Amaranth top module
WRAPPER_MODULE = "dpegen_axi"   # Xilinx-convention wrapper, the block design's module reference
LED_MODULE = "dpegen_status_led"
BD_NAME = "dpegen_bd"
ACCEL_CELL = "dpegen_0"
STATUS_LEDS = 2                 # LED 0: heartbeat of pl_clk0; LED 1: accelerator interrupt
VIVADO_MISSING = (
    "vivado is not on PATH. Install AMD Vivado 2022.1 or newer (with Zynq UltraScale+ "
    "device support), then `source <Vivado install dir>/settings64.sh` and run "
    "`sh {out}/build.sh` (or rerun this command). The complete build tree is in {out}/.")


def hp_data_width(cfg):
    """Data width of S_AXI_HP0_FPD: the accelerator's, capped at the port's 128 bits (a
    wider accelerator bus goes through the SmartConnect's width converter)."""
    return min(cfg.axi_data_width, HP_MAX_DATA_WIDTH)


def ps_config(cfg, clock_mhz):
    """The zynq_ultra_ps_e CONFIG properties the design sets (after the board preset)."""
    return {
        "PSU__USE__M_AXI_GP0": 0,                   # M_AXI_HPM0_FPD: unused
        "PSU__USE__M_AXI_GP1": 0,                   # M_AXI_HPM1_FPD: unused
        "PSU__USE__M_AXI_GP2": 1,                   # M_AXI_HPM0_LPD: register access
        "PSU__MAXIGP2__DATA_WIDTH": 32,
        "PSU__USE__S_AXI_GP2": 1,                   # S_AXI_HP0_FPD: accelerator DRAM traffic
        "PSU__SAXIGP2__DATA_WIDTH": hp_data_width(cfg),
        "PSU__FPGA_PL0_ENABLE": 1,
        "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ": clock_mhz,
        "PSU__USE__IRQ0": 1,                        # pl_ps_irq0
    }


def led_pins(count=STATUS_LEDS):
    """[(pin, iostandard)] of the first ``count`` user LEDs, from :class:`ZCU104Platform`."""
    platform = ZCU104Platform()
    pins = []
    for i in range(count):
        resource = platform.lookup("led", i)
        (name,) = resource.ios[0].names
        pins.append((name, resource.attrs["IOSTANDARD"]))
    return pins


def wrapper_verilog(component):
    """:func:`hw.dma.axi.xilinx_wrapper_verilog` with the IP-integrator attributes that tie
    ``m_axi`` and ``s_axil`` to ``aclk``, mark ``aresetn`` active low and ``irq`` as a
    level-high interrupt (Vivado reads them when it infers the module reference)."""
    from hw.dma.axi import xilinx_wrapper_verilog
    text = xilinx_wrapper_verilog(component, ACCEL_MODULE, WRAPPER_MODULE)
    edits = {
        "    input wire aclk,":
            '    (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 aclk CLK" *)\n'
            '    (* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF m_axi:s_axil, ASSOCIATED_RESET aresetn" *)\n'
            "    input wire aclk,",
        "    input wire aresetn,":
            '    (* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 aresetn RST" *)\n'
            '    (* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)\n'
            "    input wire aresetn,",
        "    output wire irq":
            '    (* X_INTERFACE_INFO = "xilinx.com:signal:interrupt:1.0 irq INTERRUPT" *)\n'
            '    (* X_INTERFACE_PARAMETER = "SENSITIVITY LEVEL_HIGH" *)\n'
            "    output wire irq",
    }
    for old, new in edits.items():
        if text.count(old) != 1:
            raise ValueError(f"wrapper has no single {old.strip()!r} port line")
        text = text.replace(old, new)
    return "// Generated by dpegen (boards/zcu104.py); do not edit.\n" + text


def status_led_verilog(clock_mhz):
    """A small module for the status LEDs: a 1 Hz heartbeat (the PL clock runs and the
    bitstream is loaded) and the accelerator's interrupt, stretched to be visible."""
    hz = int(round(clock_mhz * 1_000_000))
    half_period, stretch = hz // 2, hz // 10
    return f"""// Generated by dpegen (boards/zcu104.py); do not edit.
// led[0]: 1 Hz heartbeat of the {clock_mhz} MHz PL clock; led[1]: accelerator irq,
// held on for at least 0.1 s after each pulse.
module {LED_MODULE} (
    (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 clk CLK" *)
    (* X_INTERFACE_PARAMETER = "ASSOCIATED_RESET resetn" *)
    input wire clk,
    (* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 resetn RST" *)
    (* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)
    input wire resetn,
    input wire irq,
    output wire [1:0] led
);
    localparam [31:0] HALF_PERIOD = 32'd{half_period};
    localparam [31:0] STRETCH = 32'd{stretch};
    reg [31:0] beat_count;
    reg beat;
    reg [31:0] irq_count;
    always @(posedge clk) begin
        if (!resetn) begin
            beat_count <= 32'd0;
            beat <= 1'b0;
            irq_count <= 32'd0;
        end else begin
            if (beat_count == HALF_PERIOD - 32'd1) begin
                beat_count <= 32'd0;
                beat <= ~beat;
            end else begin
                beat_count <= beat_count + 32'd1;
            end
            if (irq)
                irq_count <= STRETCH;
            else if (irq_count != 32'd0)
                irq_count <= irq_count - 32'd1;
        end
    end
    assign led = {{irq_count != 32'd0, beat}};
endmodule
"""


def _fill(template, **values):
    for key, value in values.items():
        template = template.replace(f"@{key}@", str(value))
    if "@" in template.replace("@@", ""):
        raise ValueError("unfilled placeholder in Tcl template")
    return template


_BD_TCL = r"""# Generated by dpegen (boards/zcu104.py); do not edit.
# Block design: Zynq UltraScale+ PS; the dpegen accelerator's m_axi on S_AXI_HP0_FPD
# (@HP_WIDTH@-bit), its s_axil on M_AXI_HPM0_LPD at @REG_BASE@, its irq through an AXI
# interrupt controller to pl_ps_irq0, all on pl_clk0 at @CLOCK_MHZ@ MHz.
# Configuration: @CONFIG@

proc dpegen_create_bd {design board_preset} {
    create_bd_design $design

    set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e zynq_ultra_ps_e_0]
    if {$board_preset} {
        # ZCU104 presets: DDR4, MIO, clocks of the PS side
        apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e \
            -config {apply_board_preset "1"} $ps
    }
    set_property -dict [list \
@PS_CONFIG@    ] $ps

    set accel [create_bd_cell -type module -reference @WRAPPER@ @ACCEL_CELL@]
    set led [create_bd_cell -type module -reference @LED_MODULE@ status_led_0]
    set rst [create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset proc_sys_reset_0]
    set sc_mem [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect smartconnect_mem]
    set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {1}] $sc_mem
    set sc_ctl [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect smartconnect_ctl]
    set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {2}] $sc_ctl
    set intc [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_intc axi_intc_0]
    set_property -dict [list CONFIG.C_IRQ_CONNECTION {1}] $intc

    # clock and reset
    connect_bd_net [get_bd_pins $ps/pl_clk0] \
        [get_bd_pins $ps/maxihpm0_lpd_aclk] [get_bd_pins $ps/saxihp0_fpd_aclk] \
        [get_bd_pins $accel/aclk] [get_bd_pins $led/clk] [get_bd_pins $rst/slowest_sync_clk] \
        [get_bd_pins $sc_mem/aclk] [get_bd_pins $sc_ctl/aclk] [get_bd_pins $intc/s_axi_aclk]
    connect_bd_net [get_bd_pins $ps/pl_resetn0] [get_bd_pins $rst/ext_reset_in]
    connect_bd_net [get_bd_pins $rst/peripheral_aresetn] [get_bd_pins $accel/aresetn] \
        [get_bd_pins $led/resetn] [get_bd_pins $intc/s_axi_aresetn]
    connect_bd_net [get_bd_pins $rst/interconnect_aresetn] \
        [get_bd_pins $sc_mem/aresetn] [get_bd_pins $sc_ctl/aresetn]

    # data: accelerator -> SmartConnect -> S_AXI_HP0_FPD
    connect_bd_intf_net [get_bd_intf_pins $accel/m_axi] [get_bd_intf_pins $sc_mem/S00_AXI]
    connect_bd_intf_net [get_bd_intf_pins $sc_mem/M00_AXI] [get_bd_intf_pins $ps/S_AXI_HP0_FPD]
    # control: M_AXI_HPM0_LPD -> SmartConnect -> accelerator registers, interrupt controller
    connect_bd_intf_net [get_bd_intf_pins $ps/M_AXI_HPM0_LPD] [get_bd_intf_pins $sc_ctl/S00_AXI]
    connect_bd_intf_net [get_bd_intf_pins $sc_ctl/M00_AXI] [get_bd_intf_pins $accel/s_axil]
    connect_bd_intf_net [get_bd_intf_pins $sc_ctl/M01_AXI] [get_bd_intf_pins $intc/s_axi]
    # interrupt: accelerator irq -> axi_intc -> pl_ps_irq0; the irq also lights LED 1
    connect_bd_net [get_bd_pins $accel/irq] [get_bd_pins $intc/intr] [get_bd_pins $led/irq]
    connect_bd_net [get_bd_pins $intc/irq] [get_bd_pins $ps/pl_ps_irq0]
    # status LEDs (pins in constraints/dpegen.xdc)
    create_bd_port -dir O -from @LED_MSB@ -to 0 status_led
    connect_bd_net [get_bd_pins $led/led] [get_bd_ports status_led]

    # address map
    set ps_data [get_bd_addr_spaces $ps/Data]
    assign_bd_address -offset @REG_BASE@ -range @REG_RANGE@ -target_address_space $ps_data \
        [get_bd_addr_segs -of_objects [get_bd_intf_pins $accel/s_axil]] -force
    assign_bd_address -offset @INTC_BASE@ -range @INTC_RANGE@ -target_address_space $ps_data \
        [get_bd_addr_segs -of_objects [get_bd_intf_pins $intc/s_axi]] -force
    set accel_space [get_bd_addr_spaces $accel/m_axi]
    assign_bd_address -offset @DDR_BASE@ -range @DDR_RANGE@ -target_address_space $accel_space \
        [get_bd_addr_segs $ps/SAXIGP2/HP0_DDR_LOW] -force
    set ddr_high [get_bd_addr_segs -quiet $ps/SAXIGP2/HP0_DDR_HIGH]
    if {[llength $ddr_high]} {
        assign_bd_address -target_address_space $accel_space $ddr_high -force
    }

    validate_bd_design
    save_bd_design
}
"""

_BUILD_TCL = r"""# Generated by dpegen (boards/zcu104.py); do not edit.
# Vivado 2022.1 or newer, batch mode:
#   vivado -mode batch -source build.tcl -tclargs [JOBS]
# Writes dpegen.bit, dpegen.hwh (for PYNQ) and dpegen.xsa next to this script.
set here [file normalize [file dirname [info script]]]
set jobs @JOBS@
if {[llength $argv] > 0} { set jobs [lindex $argv 0] }
set part @PART@
set board_part @BOARD_PART@

create_project dpegen [file join $here vivado] -part $part -force
set board_preset 0
if {[llength [get_board_parts -quiet $board_part]]} {
    set_property board_part $board_part [current_project]
    set board_preset 1
} else {
    puts "WARNING: board part $board_part is not installed; building for part $part\
          without the ZCU104 PS presets (install the ZCU104 board files for DDR/MIO presets)"
}
set_property target_language Verilog [current_project]

add_files -norecurse [list \
    [file join $here rtl @ACCEL_MODULE@.v] \
    [file join $here rtl @WRAPPER@.v] \
    [file join $here rtl @LED_MODULE@.v]]
add_files -fileset constrs_1 -norecurse [file join $here constraints dpegen.xdc]
update_compile_order -fileset sources_1

source [file join $here bd.tcl]
dpegen_create_bd @BD_NAME@ $board_preset

set bd_file [get_files @BD_NAME@.bd]
generate_target all $bd_file
set wrapper [make_wrapper -files $bd_file -top]
add_files -norecurse $wrapper
set_property top @BD_NAME@_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs synth_1 -jobs $jobs
wait_on_run synth_1
if {[get_property PROGRESS [get_runs synth_1]] ne "100%"} {
    error "synthesis failed: see [get_property DIRECTORY [get_runs synth_1]]/runme.log"
}
launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "implementation failed: see [get_property DIRECTORY [get_runs impl_1]]/runme.log"
}

set bit [file join [get_property DIRECTORY [get_runs impl_1]] @BD_NAME@_wrapper.bit]
if {![file exists $bit]} { error "bitstream not found: $bit" }
file copy -force $bit [file join $here dpegen.bit]

# PYNQ reads the block design's hardware handoff (.hwh), named like the bitstream.
set hwh [lindex [get_files -all -quiet -of_objects $bd_file {*.hwh}] 0]
if {$hwh eq ""} {
    set hwh [lindex [glob -nocomplain [file join $here vivado dpegen.gen sources_1 bd \
        @BD_NAME@ hw_handoff @BD_NAME@.hwh]] 0]
}
if {$hwh eq "" || ![file exists $hwh]} { error "hardware handoff (.hwh) not found" }
file copy -force $hwh [file join $here dpegen.hwh]
write_hw_platform -fixed -include_bit -force [file join $here dpegen.xsa]
puts "dpegen: wrote [file join $here dpegen.bit] and [file join $here dpegen.hwh]"
"""

_BUILD_SH = """#!/bin/sh
# Generated by dpegen (boards/zcu104.py): runs the Vivado build of this directory.
# Needs Vivado 2022.1 or newer on PATH (source <Vivado install dir>/settings64.sh).
set -e
cd "$(dirname "$0")"
if ! command -v vivado >/dev/null 2>&1; then
    echo "vivado not found: install Vivado 2022.1 or newer and source its settings64.sh" >&2
    exit 1
fi
exec vivado -mode batch -notrace -source build.tcl -log vivado.log -journal vivado.jou \\
    -tclargs "${JOBS:-@JOBS@}"
"""


def block_design_tcl(cfg, clock_mhz=200):
    """Tcl of ``bd.tcl``: the proc ``dpegen_create_bd design board_preset``."""
    props = "".join(f"        CONFIG.{k} {{{v}}} \\\n" for k, v in ps_config(cfg, clock_mhz).items())
    return _fill(_BD_TCL, HP_WIDTH=hp_data_width(cfg), REG_BASE=f"0x{REGISTER_BASE:08X}",
                 REG_RANGE=f"0x{cfg.csr_window:X}", INTC_BASE=f"0x{INTC_BASE:08X}",
                 INTC_RANGE=f"0x{INTC_RANGE:X}", DDR_BASE=f"0x{DDR_LOW_BASE:08X}",
                 DDR_RANGE=f"0x{DDR_LOW_RANGE:08X}", CLOCK_MHZ=clock_mhz,
                 CONFIG=json.dumps(cfg.to_dict(), sort_keys=True), PS_CONFIG=props,
                 WRAPPER=WRAPPER_MODULE, ACCEL_CELL=ACCEL_CELL, LED_MODULE=LED_MODULE,
                 LED_MSB=STATUS_LEDS - 1)


def build_tcl(jobs=4):
    """Tcl of ``build.tcl``: project, block design, synthesis, implementation, exports."""
    return _fill(_BUILD_TCL, JOBS=jobs, PART=PART, BOARD_PART=BOARD_PART,
                 ACCEL_MODULE=ACCEL_MODULE, WRAPPER=WRAPPER_MODULE, LED_MODULE=LED_MODULE,
                 BD_NAME=BD_NAME)


def constraints_xdc(clock_mhz=200):
    """Pin constraints of the status LEDs (the PL clock comes from the PS: no pins)."""
    lines = ["# Generated by dpegen (boards/zcu104.py); do not edit.",
             "# Status LEDs: ZCU104 user LEDs (pins from boards/zcu104.py ZCU104Platform).",
             f"# led 0: heartbeat of pl_clk0 ({clock_mhz} MHz); led 1: accelerator interrupt."]
    for i, (pin, iostandard) in enumerate(led_pins()):
        lines += [f"set_property PACKAGE_PIN {pin} [get_ports {{status_led[{i}]}}]",
                  f"set_property IOSTANDARD {iostandard} [get_ports {{status_led[{i}]}}]"]
    return "\n".join(lines) + "\n"


def build_plan(cfg=None, *, clock_mhz=200, out_dir="build/zcu104", jobs=4,
               accelerator_verilog=None):
    """Write the complete Vivado build tree of the accelerator for the ZCU104.

    Tree (``out_dir``)::

        rtl/accelerator.v        the Accelerator (Amaranth, ``emit_src=False``)
        rtl/dpegen_axi.v         wrapper with Xilinx port names, aclk / aresetn (module reference)
        rtl/dpegen_status_led.v  heartbeat and interrupt LEDs
        constraints/dpegen.xdc   LED pins from :class:`ZCU104Platform`
        bd.tcl                   block design (PS, SmartConnects, reset, interrupt, addresses)
        build.tcl, build.sh      project, synthesis, implementation, dpegen.bit / .hwh / .xsa
        manifest.json            configuration, register map, clock, address map
        dpegen_regs.h            register map as a C header

    A standalone project-mode Tcl tree is used rather than Amaranth's
    ``XilinxPlatform.build(do_build=False)`` plan with ``script_after_read``: that plan
    runs Vivado's non-project flow with the Amaranth design as ``synth_design -top``,
    whereas this design's top is the block design's wrapper (the PS is not Amaranth
    logic), the accelerator enters the block design as a module reference (which needs a
    project's source fileset) and PYNQ needs the block design's hardware handoff (.hwh),
    which ``generate_target`` writes in a project. The platform still supplies the part
    and the LED pins.

    ``accelerator_verilog``: the Accelerator's Verilog with top module ``accelerator``,
    if already converted (conversion takes seconds). Returns ``{name: Path}`` of the files.
    """
    from hw.config import AccelConfig
    from hw.contract import register_map
    from hw.top import Accelerator

    cfg = AccelConfig() if cfg is None else cfg
    if isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float)) or not 10 <= clock_mhz <= 400:
        raise ValueError(f"clock_mhz must be a number in [10, 400], got {clock_mhz!r}")
    if float(clock_mhz).is_integer():
        clock_mhz = int(clock_mhz)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    out = Path(out_dir)
    component = Accelerator(cfg)
    if accelerator_verilog is None:
        from gen.convert import convert
        accelerator_verilog = convert(component, ACCEL_MODULE)
    else:
        component._MustUse__silence = True     # used for its ports only
    regs = register_map(cfg)
    manifest = {
        "generator": "dpegen", "board": "zcu104", "part": PART, "board_part": BOARD_PART,
        "config": cfg.to_dict(), "clock_mhz": clock_mhz,
        "hp0_data_width": hp_data_width(cfg),
        "address_map": {"registers": {"cell": ACCEL_CELL, "base": REGISTER_BASE, "range": cfg.csr_window},
                        "interrupt_controller": {"cell": "axi_intc_0", "base": INTC_BASE, "range": INTC_RANGE},
                        "dram_hp0": {"base": DDR_LOW_BASE, "range": DDR_LOW_RANGE}},
        "bitstream": "dpegen.bit", "hwh": "dpegen.hwh",
        "register_map": regs.to_json(),
    }
    files = {
        f"rtl/{ACCEL_MODULE}.v": accelerator_verilog,
        f"rtl/{WRAPPER_MODULE}.v": wrapper_verilog(component),
        f"rtl/{LED_MODULE}.v": status_led_verilog(clock_mhz),
        "constraints/dpegen.xdc": constraints_xdc(clock_mhz),
        "bd.tcl": block_design_tcl(cfg, clock_mhz),
        "build.tcl": build_tcl(jobs),
        "build.sh": _fill(_BUILD_SH, JOBS=jobs),
        "manifest.json": json.dumps(manifest, indent=2) + "\n",
        "dpegen_regs.h": regs.c_header(),
    }
    written = {}
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written[name] = path
    written["build.sh"].chmod(0o755)
    return written


def main(argv=None):
    """``python -m boards.zcu104``: write the Vivado build tree, and run Vivado if present."""
    import dataclasses

    from hw.config import AccelConfig

    parser = argparse.ArgumentParser(prog="python -m boards.zcu104", description=main.__doc__)
    defaults = AccelConfig()
    for f in dataclasses.fields(AccelConfig):
        parser.add_argument("--" + f.name.replace("_", "-"), type=int, default=getattr(defaults, f.name),
                            help=f"(default {getattr(defaults, f.name)})")
    parser.add_argument("--clock-mhz", type=float, default=200, help="pl_clk0 frequency (default 200)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", "4")),
                        help="parallel Vivado jobs (default $JOBS or 4)")
    parser.add_argument("--plan-only", action="store_true", help="write the tree, do not run Vivado")
    parser.add_argument("--out", default="build/zcu104", help="output directory")
    args = parser.parse_args(argv)
    try:
        cfg = AccelConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(AccelConfig)})
        files = build_plan(cfg, clock_mhz=args.clock_mhz, out_dir=args.out, jobs=args.jobs)
    except ValueError as exc:
        parser.error(str(exc))
    for path in files.values():
        print(path)
    if args.plan_only:
        print(f"build tree written to {args.out}/; run `sh {args.out}/build.sh` with Vivado on PATH")
        return 0
    if shutil.which("vivado") is None:
        print(VIVADO_MISSING.format(out=args.out), file=sys.stderr)
        return 1
    proc = subprocess.run(["sh", "build.sh"], cwd=args.out,
                          env={**os.environ, "JOBS": str(args.jobs)})
    if proc.returncode == 0:
        print(f"{args.out}/dpegen.bit and {args.out}/dpegen.hwh written")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
