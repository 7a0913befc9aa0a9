"""cocotb testbench of hw.datapath.repacker.Repacker: bytes in, row-aligned words out."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from hw.datapath.repacker import Repacker
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, TransferLog, finish, random_pauses,
                              seeded_rng, start_clock_and_reset)


def expected_words(stream_bytes, row_bytes, out_bytes):
    words = []
    for start in range(0, len(stream_bytes), row_bytes):
        row = stream_bytes[start:start + row_bytes]
        for w in range(0, len(row), out_bytes):
            chunk = row[w:w + out_bytes]
            words.append((chunk, len(chunk), int(w + out_bytes >= len(row))))
    return words


@cocotb.test()
async def repack(dut):
    p = params()
    rp = Repacker(in_bytes=p["in_bytes"], out_bytes=p["out_bytes"])
    rng = seeded_rng(p)
    nrng = np.random.default_rng(p.get("seed", 1))
    row_bytes = p["row_bytes"]
    total = row_bytes * p["rows"]
    stream_bytes = nrng.integers(0, 256, size=total).tolist()
    beats, pos = [], 0
    while pos < total:                    # random partial beats, junk past count
        count = int(nrng.integers(1 if p.get("partial") else p["in_bytes"], p["in_bytes"] + 1))
        count = min(count, total - pos)
        junk = nrng.integers(0, 256, size=p["in_bytes"]).tolist()
        junk[:count] = stream_bytes[pos:pos + count]
        pos += count
        beats.append({"data": junk, "count": count, "last": int(pos == total)})
    want = expected_words(stream_bytes, row_bytes, p["out_bytes"])

    await start_clock_and_reset(dut)
    # the rows in several commands; they do not line up with the input beats
    commands, rows = [], p["rows"]
    while rows:
        n = int(nrng.integers(1, rows + 1))
        commands.append({"rows": n, "row_bytes": row_bytes})
        rows -= n
    pause = p.get("pause", 0.0)
    source = StreamSource(dut, "i", rp.in_layout, pause=random_pauses(rng, pause) if pause else None)
    sink = StreamSink(dut, "o", rp.out_layout, pause=random_pauses(rng, pause) if pause else None)
    await finish([StreamSource(dut, "cmd", rp.cmd_layout).start(commands),
                  source.start(beats), sink.start(len(want))], dut.clk, 20 * (len(beats) + len(want)) + 100)
    for index, (got, (chunk, count, last)) in enumerate(zip(sink.beats, want)):
        assert got["count"] == count and got["last"] == last, f"word {index}: {got} vs {chunk}"
        assert got["data"][:count] == chunk, f"word {index}: {got['data'][:count]} != {chunk}"
    if not pause and not p.get("partial") and p["in_bytes"] >= p["out_bytes"]:
        assert sink.cycles[-1] - sink.cycles[0] <= len(want) + 2, "repacker below one word per cycle"


@cocotb.test()
async def latency(dut):
    """Repacker.latency: from the input beat that completes an output word to that word."""
    p = params()
    rp = Repacker(in_bytes=p["in_bytes"], out_bytes=p["out_bytes"])
    await start_clock_and_reset(dut)
    log = TransferLog(dut, i="i", o="o")
    sink = StreamSink(dut, "o", rp.out_layout)
    task = sink.start(1)
    await StreamSource(dut, "cmd", rp.cmd_layout).send([{"rows": 1, "row_bytes": rp.out_bytes}])
    await ClockCycles(dut.clk, 5)
    beats, left = [], rp.out_bytes
    while left:
        count = min(left, rp.in_bytes)
        beats.append({"data": [7] * rp.in_bytes, "count": count, "last": int(count == left)})
        left -= count
    await StreamSource(dut, "i", rp.in_layout).send(beats)
    await finish([task], dut.clk, 100)
    measured = log.first("o") - log.cycles["i"][-1]
    assert measured == rp.latency, f"latency {measured} != {rp.latency}"
