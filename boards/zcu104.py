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
"""

from amaranth.build import Attrs, Clock, DiffPairs, Resource
from amaranth.vendor import XilinxPlatform
from amaranth_boards.resources import ButtonResources, LEDResources, SwitchResources

__all__ = ["ZCU104Platform", "PART"]

PART = "xczu7ev-ffvc1156-2-e"


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
