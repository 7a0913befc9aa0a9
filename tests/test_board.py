"""ZCU104 platform: resources resolve and the Vivado build plan is complete."""

import re

import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth.lib import io

from boards.zcu104 import PART, ZCU104Platform

LED_PINS = ["D5", "D6", "A5", "B5"]
BUTTON_PINS = ["B4", "C4", "B3", "C3"]
SWITCH_PINS = ["E4", "D4", "F5", "F4"]


class Blinky(Elaboratable):
    """A counter on the 125 MHz clock; its top bits on the LEDs, XORed with the switches."""

    def elaborate(self, platform):
        m = Module()
        counter = Signal(28)
        m.d.sync += counter.eq(counter + 1)
        for i in range(4):
            m.submodules[f"led{i}"] = led = io.Buffer("o", platform.request("led", i, dir="-"))
            m.submodules[f"sw{i}"] = sw = io.Buffer("i", platform.request("switch", i, dir="-"))
            m.d.comb += led.o.eq(counter[-4 + i] ^ sw.i)
        return m


def test_part():
    platform = ZCU104Platform()
    assert (platform.device, platform.package, platform.speed) == ("xczu7ev", "ffvc1156", "2-e")
    assert platform.family == "ultrascaleplus"
    assert platform._part == PART == "xczu7ev-ffvc1156-2-e"
    assert platform.default_clk_frequency == 125e6


@pytest.mark.parametrize("name,number", [("clk125", 0), ("clk300", 0)]
                         + [(n, i) for n in ("led", "button", "switch") for i in range(4)])
def test_resources_resolve(name, number):
    port = ZCU104Platform().request(name, number, dir="-")
    assert len(port) >= 1


def test_resource_pins():
    platform = ZCU104Platform()
    for name, pins in (("led", LED_PINS), ("button", BUTTON_PINS), ("switch", SWITCH_PINS)):
        for i, pin in enumerate(pins):
            resource = platform.lookup(name, i)
            assert resource.ios[0].names == [pin]
            assert resource.attrs["IOSTANDARD"] == "LVCMOS33"
    clk = platform.lookup("clk125", 0)
    assert (clk.ios[0].p.names, clk.ios[0].n.names) == (["F23"], ["E23"])
    assert clk.clock.frequency == 125e6


def test_build_plan(tmp_path):
    plan = ZCU104Platform().build(Blinky(), name="blinky", do_build=False)
    plan.extract(tmp_path)
    tcl = (tmp_path / "blinky.tcl").read_text()
    xdc = (tmp_path / "blinky.xdc").read_text()
    assert f"-part {PART}" in tcl
    assert "synth_design -top blinky" in tcl
    assert "write_bitstream" in tcl
    for pin in LED_PINS + SWITCH_PINS + ["F23", "E23"]:
        assert re.search(rf"set_property LOC {pin} \[get_ports", xdc), pin
    assert "LVCMOS33" in xdc
    assert re.search(r"create_clock -name \S+ -period 8\.0\b", xdc)
    assert (tmp_path / "blinky.v").read_text().count("module blinky") == 1
    assert (tmp_path / "build_blinky.sh").exists()
