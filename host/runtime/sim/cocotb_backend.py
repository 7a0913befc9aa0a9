"""cocotb side of the simulation backend: runs prepared layers (``run_layers``) or a
whole executable (``run_executable``) on the Accelerator with an AXI4 RAM model
(configurable latency and random pauses) and an AXI4-Lite master."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, First, RisingEdge

from hw.config import AccelConfig
from hw.contract import CONTROL_SOFT_RESET, STATUS_BUSY, register_map
from host.runtime.driver import (counters_from, finish_sequence, queue_start_sequence, queue_writes,
                                 start_sequence)
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
        starting = start_sequence()
        if layer.get("queue"):
            for offset, value in queue_writes(AccelConfig(), *layer["queue"]):
                await axil.write(offset, int(value).to_bytes(4, "little"))
            starting = queue_start_sequence()
        for offset, value in starting:
            start = counter.cycle                    # the last write is START
            await axil.write(offset, value.to_bytes(4, "little"))
        if not int(dut.irq.value):
            timer = ClockCycles(dut.clk, layer["timeout_cycles"])
            await First(RisingEdge(dut.irq), timer)
        wall_cycles = counter.cycle - start
        status = await read(rm["STATUS"].offset)
        error = await read(rm["ERROR_CODE"].offset)
        counters = await _counters(read)
        queue_index = await read(rm["QUEUE_INDEX"].offset)
        for offset, value in finish_sequence():
            await axil.write(offset, value.to_bytes(4, "little"))
        output = np.zeros(0, np.uint8)
        if layer["output"]:
            addr, size = layer["output"]
            output = np.frombuffer(ram.read(addr, size), dtype=np.uint8)
        results.append({"status": status, "error_code": error, "counters": counters,
                        "irq": bool(status & 2), "wall_cycles": wall_cycles,
                        "queue_index": queue_index, "output": output.tolist()})
    after = np.frombuffer(ram.read(0, memory.size), dtype=np.uint8)
    changed = np.nonzero(after != memory)[0]
    store_result({"identification": identification, "layers": results,
                  "changed": [int(changed.min()), int(changed.max()), int(changed.size)] if changed.size else None,
                  "changed_offsets": changed[:64].tolist(),
                  **({"memory": after.tolist()} if p.get("dump") else {})})


class CocotbDevice:
    """The simulated accelerator as a :class:`host.runtime.executable.Device`, for the
    runtime running in a thread bridged into the simulation (``cocotb.task.bridge``):
    register accesses and waits block that thread while the simulation runs them; DRAM
    accesses read and write the RAM model directly."""
    timeout_unit = "cycles"

    def __init__(self, dut, ram, axil, counter, base, size):
        from cocotb.task import resume
        self.dut, self.ram, self.axil, self.counter = dut, ram, axil, counter
        self.base, self.size = base, size
        self.control = register_map()["CONTROL"].offset
        self._start = self._cycles = None
        self.read_register = resume(self._read_register)
        self.write_register = resume(self._write_register)
        self.wait = resume(self._wait)

    async def _read_register(self, offset):
        return int.from_bytes((await self.axil.read(offset, 4)).data, "little")

    async def _write_register(self, offset, value):
        if offset == self.control:
            self._start = self.counter.cycle
        await self.axil.write(offset, int(value).to_bytes(4, "little"))

    async def _wait(self, timeout):
        if not int(self.dut.irq.value):
            await First(RisingEdge(self.dut.irq), ClockCycles(self.dut.clk, int(timeout)))
        self._cycles = self.counter.cycle - self._start
        return bool(int(self.dut.irq.value))

    def read_memory(self, addr, size):
        return np.frombuffer(self.ram.read(addr, size), dtype=np.uint8)

    def write_memory(self, addr, data):
        self.ram.write(addr, np.asarray(data, dtype=np.uint8).tobytes())

    def cycles_since_start(self):
        return self._cycles

    def close(self):
        pass


@cocotb.test()
async def run_executable(dut):
    """Run frames of a saved executable (``params``: its path, the inputs' .npz, where
    to write the outputs) with the runtime of :mod:`host.runtime.executable`."""
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster
    from cocotb.task import bridge

    from host.runtime.executable import Executable, IMAGE_ALIGN, Session

    p = params()
    exe = Executable.load(p["executable"])
    inputs = np.load(p["inputs"])
    base = IMAGE_ALIGN
    ram = make_ram(dut, base + exe.image_size)
    counter = CycleCounter(dut.clk)
    if p.get("latency"):
        add_read_latency(ram, counter, p["latency"])
        add_write_latency(ram, counter, p["latency"])
    if p.get("pause"):
        import random
        set_axi_pauses(ram, random.Random(p.get("seed", 1)), p["pause"])
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"), dut.clk, dut.rst)
    await start_clock_and_reset(dut)
    device = CocotbDevice(dut, ram, axil, counter, base, exe.image_size)

    def frames():
        session = Session(exe, device)
        results = []
        for frame in range(p.get("frames", 1)):
            outputs, recorded = session.run(*[inputs[f"input{i}"] for i in range(len(exe.inputs))],
                                            record=p.get("record", False), profile=True)
            results.append((outputs, recorded, session.report.to_dict()))
        return results
    results = await bridge(frames)()
    outputs, recorded, report = results[-1]
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    arrays = {f"output{i}": np.asarray(o) for i, o in enumerate(outputs)}
    for name, value in (recorded or {}).items():
        arrays[f"tensor:{name}"] = value
    np.savez(p["outputs"], **arrays)
    store_result({"report": report, "outputs": len(outputs)})


async def _counters(read):
    values = {}
    rm = register_map()
    for reg in rm:
        if reg.name.endswith("_LO") and reg.access == "ro":
            values[reg.offset] = await read(reg.offset)
            hi = rm[reg.name[:-3] + "_HI"]
            values[hi.offset] = await read(hi.offset)
    return counters_from(lambda offset: values[offset])
