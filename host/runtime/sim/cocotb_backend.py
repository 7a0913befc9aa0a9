"""cocotb side of the simulation backend: runs prepared layers on the Accelerator with an
AXI4 RAM model (configurable latency and random pauses) and an AXI4-Lite master."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, First, RisingEdge

from hw.contract import CONTROL_SOFT_RESET, STATUS_BUSY, register_map
from host.runtime.driver import counters_from, finish_sequence, start_sequence
from host.runtime.sim.runner import params, store_result
from host.runtime.sim.axi import CycleCounter, ErrorInjector, add_read_latency, add_write_latency, make_ram, set_axi_pauses
from host.runtime.sim.streams import start_clock_and_reset


@cocotb.test()
async def run_layers(dut):
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster

    p = params()
    rm = register_map()
    image = np.load(p["image"])
    memory = image["memory"]
    ram = make_ram(dut, memory.size)
    counter = CycleCounter(dut.clk)
    if p.get("latency"):
        add_read_latency(ram, counter, p["latency"])
        add_write_latency(ram, counter, p["latency"])
    if p.get("pause"):
        import random
        set_axi_pauses(ram, random.Random(p.get("seed", 1)), p["pause"])
    faults = ErrorInjector(ram)
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"), dut.clk, dut.rst)
    await start_clock_and_reset(dut)
    ram.write(0, memory.tobytes())

    async def read(offset):
        return int.from_bytes((await axil.read(offset, 4)).data, "little")

    identification = {reg.offset: await read(reg.offset) for reg in rm
                      if reg.name in ("MAGIC", "VERSION") or reg.name.startswith("CFG_")}
    results = []
    for index, layer in enumerate(p["layers"]):
        if layer.get("soft_reset_first"):
            await axil.write(rm["CONTROL"].offset, CONTROL_SOFT_RESET.to_bytes(4, "little"))
            await ClockCycles(dut.clk, 4)
            while (await read(rm["STATUS"].offset)) & STATUS_BUSY:
                await ClockCycles(dut.clk, 16)
        fault = layer.get("fault")          # {"ranges": [[start, end]], "code": 2 or 3}
        faults.ranges = [tuple(r) for r in fault["ranges"]] if fault else []
        faults.code = fault["code"] if fault else 2
        for offset, value in layer["writes"]:
            await axil.write(offset, int(value).to_bytes(4, "little"))
        for offset, value in start_sequence():
            start = counter.cycle                    # the last write is START
            await axil.write(offset, value.to_bytes(4, "little"))
        if not int(dut.irq.value):
            timer = ClockCycles(dut.clk, layer["timeout_cycles"])
            await First(RisingEdge(dut.irq), timer)
        wall_cycles = counter.cycle - start
        status = await read(rm["STATUS"].offset)
        error = await read(rm["ERROR_CODE"].offset)
        counters = await _counters(read)
        for offset, value in finish_sequence():
            await axil.write(offset, value.to_bytes(4, "little"))
        addr, size = layer["output"]
        output = np.frombuffer(ram.read(addr, size), dtype=np.uint8)
        results.append({"status": status, "error_code": error, "counters": counters,
                        "irq": bool(status & 2), "wall_cycles": wall_cycles,
                        "output": output.tolist()})
    after = np.frombuffer(ram.read(0, memory.size), dtype=np.uint8)
    changed = np.nonzero(after != memory)[0]
    store_result({"identification": identification, "layers": results,
                  "changed": [int(changed.min()), int(changed.max()), int(changed.size)] if changed.size else None,
                  "changed_offsets": changed[:64].tolist()})


async def _counters(read):
    values = {}
    rm = register_map()
    for reg in rm:
        if reg.name.endswith("_LO") and reg.access == "ro":
            values[reg.offset] = await read(reg.offset)
            hi = rm[reg.name[:-3] + "_HI"]
            values[hi.offset] = await read(hi.offset)
    return counters_from(lambda offset: values[offset])
