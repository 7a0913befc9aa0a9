"""DMA efficiency benchmark: bytes / (cycles * bus bytes) of AxiReader and AxiWriter.

A 64 KiB transfer at 128-bit width against cocotbext-axi's AxiRam with a fixed, pipelined
memory latency (50 and 100 cycles; ARs are served ``latency`` cycles after they arrive, B
responses arrive ``latency`` cycles after the last W beat). Cycles are counted from the
command's first valid cycle to the last data beat (reader) or the ``done`` beat (writer).

    .venv/bin/python -m bench.dma_bench      # prints a table, writes build/bench/dma.json
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA_WIDTH = 128
TRANSFER = 64 * 1024
LATENCIES = (50, 100)
OFFSETS = (0, 3)

try:
    import cocotb
except ImportError:          # the driver only needs cocotb inside the simulator
    cocotb = None


if cocotb is not None:
    @cocotb.test()
    async def dma_efficiency(dut):
        from hw.dma import beat_layout, cmd_layout
        from host.runtime.sim.axi import CycleCounter, add_read_latency, add_write_latency, make_ram
        from host.runtime.sim.runner import params, store_result
        from cocotb.triggers import ClockCycles
        from host.runtime.sim.streams import StreamSink, StreamSource, finish, start_clock_and_reset

        p = params()
        lanes = p["data_width"] // 8
        results = []
        current = {"latency": 0}
        ram = make_ram(dut, 1 << 20)
        counter = CycleCounter(dut.clk)
        add_read_latency(ram, counter, lambda: current["latency"])
        add_write_latency(ram, counter, lambda: current["latency"])
        dut.rd_clear.value = 0
        dut.wr_clear.value = 0
        await start_clock_and_reset(dut)
        for latency in p["latencies"]:
            current["latency"] = latency
            for offset in p["offsets"]:
                for engine in ("reader", "writer"):
                    addr, length = 0x10000 + offset, p["transfer"]
                    ram.write(addr, bytes(i * 7 & 0xFF for i in range(length)))
                    cmds = [{"addr": addr, "length": length}]
                    beats = -(-length // lanes)
                    if engine == "reader":
                        src = StreamSource(dut, "rd_cmd", cmd_layout(32))
                        sink = StreamSink(dut, "rd_data", beat_layout(p["data_width"]))
                        tasks = [src.start(cmds), sink.start(beats)]
                    else:
                        src = StreamSource(dut, "wr_cmd", cmd_layout(32))
                        data = StreamSource(dut, "wr_data", beat_layout(p["data_width"]))
                        sink = StreamSink(dut, "wr_done", 2)
                        payload = [{"data": int.from_bytes(bytes((j * 13 + 1) & 0xFF for j in range(lanes)), "little"),
                                    "count": min(lanes, length - i * lanes), "last": int(i == beats - 1)}
                                   for i in range(beats)]
                        tasks = [src.start(cmds), data.start(payload), sink.start(1)]
                    await finish(tasks, dut.clk, 20 * beats + 10 * latency)
                    cycles = sink.cycles[-1] + 1
                    if engine == "reader":   # the numbers only count if the data are right
                        got = b"".join(b["data"].to_bytes(lanes, "little")[:b["count"]]
                                       for b in sink.beats)
                        assert got == ram.read(addr, length), "reader returned wrong data"
                    else:
                        want = b"".join(b["data"].to_bytes(lanes, "little")[:b["count"]]
                                        for b in payload)
                        assert ram.read(addr, length) == want, "writer wrote wrong data"
                    await ClockCycles(dut.clk, 2 * latency + 20)
                    results.append({"engine": engine, "latency": latency, "offset": offset,
                                    "bytes": length, "cycles": cycles,
                                    "efficiency": length / (cycles * lanes)})
        store_result(results)


def main():
    from hw.dma import AxiDma
    from host.runtime.sim import runner

    results = runner.run(AxiDma(data_width=DATA_WIDTH, addr_width=32),
                       name=f"axi_dma_{DATA_WIDTH}", test_module="bench.dma_bench",
                       params={"data_width": DATA_WIDTH, "transfer": TRANSFER,
                               "latencies": list(LATENCIES), "offsets": list(OFFSETS)},
                       result=True)
    print(f"DMA efficiency, {TRANSFER // 1024} KiB, {DATA_WIDTH}-bit bus, 8 reads outstanding")
    print(f"{'engine':8} {'latency':>8} {'offset':>7} {'cycles':>8} {'efficiency':>11}")
    for r in results:
        print(f"{r['engine']:8} {r['latency']:>8} {r['offset']:>7} {r['cycles']:>8} "
              f"{100 * r['efficiency']:>10.1f}%")
    out = ROOT / "build" / "bench" / "dma.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"data_width": DATA_WIDTH, "transfer_bytes": TRANSFER,
                               "results": results}, indent=2) + "\n")
    print(f"saved {out}")
    return results


if __name__ == "__main__":
    main()
