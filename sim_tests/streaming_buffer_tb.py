"""cocotb testbench of hw.datapath.streaming_buffer.StreamingBuffer: ping-pong loads and replays."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from hw.datapath.streaming_buffer import StreamingBuffer
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, TransferLog, finish, random_pauses,
                              seeded_rng, start_clock_and_reset)


@cocotb.test()
async def ping_pong(dut):
    p = params()
    sb = StreamingBuffer(word_bytes=p["word_bytes"], depth=p["depth"])
    rng = seeded_rng(p)
    nrng = np.random.default_rng(p.get("seed", 1))
    tiles = []
    for _ in range(p["tiles"]):
        words = int(nrng.integers(1, p["depth"] + 1)) if not p.get("steady") else p["depth"]
        tiles.append((nrng.integers(0, 256, size=(words, p["word_bytes"])).tolist(),
                      p.get("replays") or int(nrng.integers(1, 4))))
    loads = [{"words": len(w)} for w, _ in tiles]
    replays = [{"words": len(w), "replays": r} for w, r in tiles]
    writes = [word for w, _ in tiles for word in w]
    expected = [word for w, r in tiles for _ in range(r) for word in w]

    await start_clock_and_reset(dut)
    pause = p.get("pause", 0.0)
    pauses = (lambda: random_pauses(rng, pause)) if pause else (lambda: None)
    sink = StreamSink(dut, "read", sb.word_layout, pause=pauses())
    tasks = [StreamSource(dut, "load", sb.load_layout, pause=pauses()).start(loads),
             StreamSource(dut, "write", sb.word_layout, pause=pauses()).start(writes),
             StreamSource(dut, "replay", sb.replay_layout, pause=pauses()).start(replays),
             sink.start(len(expected))]
    await finish(tasks, dut.clk, 20 * (len(expected) + len(writes)) + 200)
    assert sink.beats == expected, "replayed words differ from the loaded tiles"
    if p.get("steady"):
        # each tile replays twice while the next one loads: no gap between tiles
        gaps = sink.cycles[-1] - sink.cycles[0] + 1 - len(expected)
        assert gaps <= 2 * len(tiles), f"{gaps} idle cycles: loads do not overlap replays"


@cocotb.test()
async def latency(dut):
    """StreamingBuffer.latency: from a replay command to its first word, the half loaded."""
    p = params()
    sb = StreamingBuffer(word_bytes=p["word_bytes"], depth=p["depth"])
    await start_clock_and_reset(dut)
    log = TransferLog(dut, replay="replay", read="read")
    sink = StreamSink(dut, "read", sb.word_layout)
    task = sink.start(2)
    await StreamSource(dut, "load", sb.load_layout).send([{"words": 2}])
    await StreamSource(dut, "write", sb.word_layout).send([[1] * sb.word_bytes, [2] * sb.word_bytes])
    await ClockCycles(dut.clk, 5)
    await StreamSource(dut, "replay", sb.replay_layout).send([{"words": 2, "replays": 1}])
    await finish([task], dut.clk, 100)
    assert log.latency("replay", "read") == sb.latency, \
        f"latency {log.latency('replay', 'read')} != {sb.latency}"
