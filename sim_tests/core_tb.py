"""Composite testbench: StreamingBuffer -> LineBuffer (3x3) or PointwiseReader (1x1) ->
DPEArray -> OutputBuffer -> requantizers, fed with the DRAM transfers of host.golden.tiling
and the commands of host.golden.schedule; the u8 output must equal
host.golden.quant.QuantConv bit for bit, layer after layer."""

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from host.golden import tiling
from host.runtime.layout import DramImage, layer_descriptor
from host.golden.schedule import core_commands
from hw.config import AccelConfig
from hw.contract import DmaKind
from hw.datapath.core import ComputeCore
from host.runtime.sim.layers import random_conv
from host.runtime.sim.runner import params, store_result
from host.runtime.sim.streams import (StreamSink, StreamSource, finish, random_pauses, seeded_rng,
                          start_clock_and_reset)


def beats(data, bus):
    data = np.asarray(data, dtype=np.uint8)
    out = []
    for start in range(0, data.size, bus):
        chunk = data[start:start + bus].tolist()
        count = len(chunk)
        out.append({"data": chunk + [0] * (bus - count), "count": count,
                    "last": int(start + bus >= data.size)})
    return out


async def run_layer(dut, cfg, core, spec, nrng, pauses):
    """One layer through the core; its output against QuantConv, bit for bit."""
    bus = core.bus_bytes
    L = spec["layer"]
    conv = random_conv(nrng, L["c"], L["k"], L["kernel"], L["stride"], L["padding"], spec.get("table", False))
    x = nrng.integers(0, 256, size=(1, L["c"], L["h"], L["w"]), dtype=np.uint8)
    expected = conv(x)[0]

    dram = DramImage()
    desc = layer_descriptor(conv, x.shape, dram, spec.get("tiles"))
    dram.write("input", x)
    streams = {"iact_in": [], "weight_in": [], "params_in": []}
    kinds = {DmaKind.IACT: "iact_in", DmaKind.WEIGHT: "weight_in", DmaKind.PARAMS: "params_in"}
    writes = []
    for c in tiling.commands(desc):
        if c["kind"] == DmaKind.OUTPUT:
            writes.append((c["addr"], c["length"]))
        else:
            streams[kinds[c["kind"]]] += beats(dram.read(c["addr"], c["length"]), bus)
    commands = core_commands(cfg, desc, conv.input_zero_point)
    out_words = sum(-(-length // bus) for _, length in writes)

    layouts = {name: core.signature.members[name].signature.members["payload"].shape
               for name in list(commands) + list(streams) + ["table"]}
    # the layer's set-up: the kind of windows, the activation table, before anything runs
    dut.pointwise.value = int(L["kernel"] == 1)
    dut.depthwise.value = int(desc["depthwise"])
    await StreamSource(dut, "table", layouts["table"]).send(
        [{"addr": a, "data": int(v)} for a, v in enumerate(conv.table)])
    tasks = [StreamSource(dut, name, layouts[name]).start(items) for name, items in commands.items()]
    tasks += [StreamSource(dut, name, layouts[name], pause=pauses()).start(items)
              for name, items in streams.items()]
    sink = StreamSink(dut, "out", layouts["iact_in"], pause=pauses())
    tasks.append(sink.start(out_words))

    busy = [0]

    async def count_busy():
        while True:
            await ReadOnly()
            busy[0] += int(dut.array_busy.value)
            await RisingEdge(dut.clk)
    monitor = cocotb.start_soon(count_busy())
    await finish(tasks, dut.clk, 50 * out_words + 40 * sum(len(v) for v in streams.values())
                 + 20 * conv.weight.size + 20000)
    monitor.cancel()

    words = iter(sink.beats)
    for addr, length in writes:
        got = []
        while len(got) < length:
            beat = next(words)
            got += beat["data"][:beat["count"]]
            assert beat["last"] == int(len(got) == length), "write command boundary misplaced"
        dram.memory[addr:addr + length] = got
    out_addr, out_size = dram.regions["output"]
    result = dram.memory[out_addr:out_addr + out_size].reshape(expected.shape)
    bad = int((result != expected).sum())
    where = [(tuple(int(i) for i in idx), int(result[idx]), int(expected[idx]))
             for idx in zip(*np.nonzero(result != expected))][:8]
    assert bad == 0, (f"{L}, tiles {spec.get('tiles')}: {bad} of {expected.size} outputs differ from "
                      f"QuantConv: (k, x, y), got, want: {where}")

    k, xo, yo = expected.shape
    macs = k * L["c"] * xo * yo * L["kernel"] ** 2
    return {"cycles": sink.cycles[-1] + 1, "busy_cycles": busy[0], "macs": macs,
            "ideal_cycles": macs / (9 * cfg.kp * cfg.yp)}


@cocotb.test()
async def layers(dut):
    """The layers of ``params()["layers"]`` one after another, as the accelerator runs them."""
    p = params()
    cfg = AccelConfig(**p["cfg"])
    core = ComputeCore(cfg)
    rng = seeded_rng(p)
    nrng = np.random.default_rng(p.get("seed", 1))
    pause = p.get("pause", 0.0)
    pauses = (lambda: random_pauses(rng, pause)) if pause else (lambda: None)
    await start_clock_and_reset(dut)
    stats = []
    for spec in p["layers"]:
        stats.append(await run_layer(dut, cfg, core, spec, nrng, pauses))
        dut._log.info("%s: %s", spec, stats[-1])
    store_result(stats)
