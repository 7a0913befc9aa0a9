"""cocotb testbench of hw.datapath.stationary_buffer.StationaryBuffer: weight tiles in, weight sets out."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from hw.datapath.stationary_buffer import StationaryBuffer
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, TransferLog, finish, random_pauses,
                              seeded_rng, start_clock_and_reset)


@cocotb.test()
async def weight_tiles(dut):
    p = params()
    kp, depth = p["kp"], p["depth"]
    st = StationaryBuffer(kp=kp, depth=depth)
    rng = seeded_rng(p)
    nrng = np.random.default_rng(p.get("seed", 1))
    loads, writes, replays, expected = [], [], [], []
    for _ in range(p["tiles"]):
        kernel = int(nrng.choice([1, 3]))
        while True:
            kernels, channels = int(nrng.integers(1, 3 * kp + 2)), int(nrng.integers(1, 9))
            if -(-kernels // kp) * channels <= depth:
                break
        w = nrng.integers(-128, 128, size=(kernels, channels, kernel * kernel))
        loads.append({"kernels": kernels, "channels": channels, "kernel": kernel})
        for k in range(kernels):
            for c in range(channels):
                taps = (w[k, c] & 0xFF).tolist()
                writes.append({"data": taps + [int(nrng.integers(0, 256))] * (9 - len(taps)),
                               "count": len(taps), "last": 1})
        groups = -(-kernels // kp)
        replays.append({"kernel_groups": groups, "channels": channels})
        full = np.zeros((kernels, channels, 9), dtype=np.int64)
        if kernel == 3:
            full[:] = w
        else:
            full[:, :, 4] = w[:, :, 0]
        for g in range(groups):
            for c in range(channels):
                expected.append({lane: full[g * kp + lane, c].tolist()
                                 for lane in range(kp) if g * kp + lane < kernels})

    await start_clock_and_reset(dut)
    pause = p.get("pause", 0.0)
    pauses = (lambda: random_pauses(rng, pause)) if pause else (lambda: None)
    sink = StreamSink(dut, "weights", st.weights_layout, pause=pauses())
    tasks = [StreamSource(dut, "load", st.load_layout, pause=pauses()).start(loads),
             StreamSource(dut, "write", st.write_layout, pause=pauses()).start(writes),
             StreamSource(dut, "replay", st.replay_layout, pause=pauses()).start(replays),
             sink.start(len(expected))]
    await finish(tasks, dut.clk, 20 * (len(expected) + len(writes)) + 200)
    for index, (got, want) in enumerate(zip(sink.beats, expected)):
        for lane, taps in want.items():
            assert got[lane] == taps, f"set {index}, kernel lane {lane}: {got[lane]} != {taps}"


@cocotb.test()
async def latency(dut):
    """StationaryBuffer.latency: from a replay command to its first weight set, the half
    loaded."""
    p = params()
    st = StationaryBuffer(kp=p["kp"], depth=p["depth"])
    await start_clock_and_reset(dut)
    log = TransferLog(dut, replay="replay", weights="weights")
    sink = StreamSink(dut, "weights", st.weights_layout)
    task = sink.start(1)
    await StreamSource(dut, "load", st.load_layout).send([{"kernels": st.kp, "channels": 1, "kernel": 3}])
    await StreamSource(dut, "write", st.write_layout).send(
        [{"data": [k + 1] * 9, "count": 9, "last": 1} for k in range(st.kp)])
    await ClockCycles(dut.clk, 5)
    await StreamSource(dut, "replay", st.replay_layout).send([{"kernel_groups": 1, "channels": 1}])
    await finish([task], dut.clk, 100)
    assert log.latency("replay", "weights") == st.latency, \
        f"latency {log.latency('replay', 'weights')} != {st.latency}"
