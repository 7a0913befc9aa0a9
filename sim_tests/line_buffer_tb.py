"""cocotb testbench of hw.datapath.line_buffer.LineBuffer against host.golden.tile_model."""

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from host.golden.tile_model import groups_for, line_buffer_windows, row_words
from hw.datapath.line_buffer import LineBuffer
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, TransferLog, finish, random_pauses,
                              seeded_rng, start_clock_and_reset)


def random_pass(nrng, yp, max_row, *, kernel=None, stride=None, channels=None):
    """A pass over a random tile: geometry with every padding combination in reach."""
    kernel = kernel or int(nrng.choice([1, 3]))
    stride = stride or int(nrng.choice([1, 2]))
    while True:
        rows_in = int(nrng.integers(1, 12))
        cols_in = int(nrng.integers(1, max_row + 1))
        if kernel == 3:
            pad_top, pad_left, pad_bottom, pad_right = (int(v) for v in nrng.integers(0, 3, size=4))
            span_r, span_c = rows_in + pad_top + pad_bottom - 3, cols_in + pad_left + pad_right - 3
        else:
            pad_top = pad_left = 0
            span_r, span_c = rows_in - 1, cols_in - 1
        if span_r >= 0 and span_c >= 0:
            break
    out_rows, out_cols = span_r // stride + 1, span_c // stride + 1
    if (out_cols - 1) * stride + 3 > max_row + 2:                 # keep within the row slots
        return random_pass(nrng, yp, max_row, kernel=kernel, stride=stride, channels=channels)
    channels = channels or int(nrng.integers(1, 4))
    image = nrng.integers(0, 256, size=(channels, rows_in, cols_in), dtype=np.uint8)
    geometry = dict(out_rows=out_rows, out_cols=out_cols, pad_top=pad_top, pad_left=pad_left,
                    stride=stride, kernel=kernel, yp=yp, zero_point=int(nrng.integers(0, 256)))
    return image, geometry


@cocotb.test()
async def windows(dut):
    p = params()
    yp, max_row, lanes = p["yp"], p["max_row"], p.get("lanes", 1)
    lb = LineBuffer(yp=yp, max_row=max_row, lanes=lanes)
    rng = seeded_rng(p)
    nrng = np.random.default_rng(p.get("seed", 1))
    if p.get("steady"):
        passes = [random_pass(nrng, yp, max_row, kernel=3, stride=1, channels=4) for _ in range(3)]
    else:
        passes = [random_pass(nrng, yp, max_row) for _ in range(p.get("passes", 12))]

    commands, words, expected = [], [], []
    for image, g in passes:
        c, rows_in, cols_in = image.shape
        # every lane: an image of the same geometry (lane 0 the pass's own)
        images = [image] + [nrng.integers(0, 256, size=image.shape) for _ in range(lanes - 1)]
        commands.append({"channels": c, "rows_in": rows_in, "cols_in": cols_in,
                         "out_rows": g["out_rows"], "groups": groups_for(g["out_cols"], yp),
                         "pad_top": g["pad_top"], "pad_left": g["pad_left"], "stride": g["stride"],
                         "kernel": g["kernel"], "zero_point": g["zero_point"]})
        words += np.stack([row_words(im, lb.word_bytes) for im in images], axis=1).tolist()
        wins = [line_buffer_windows(im, **g) for im in images]
        win = wins[0]
        for ch in range(c):
            for xo in range(g["out_rows"]):
                for grp in range(win.shape[2]):
                    expected.append({"windows": [w[ch, xo, grp].tolist() for w in wins],
                                     "first": int(xo == 0 and grp == 0),
                                     "last": int(xo == g["out_rows"] - 1 and grp == win.shape[2] - 1)})

    await start_clock_and_reset(dut)
    pause = p.get("pause", 0.0)
    pauses = (lambda: random_pauses(rng, pause)) if pause else (lambda: None)
    tasks = [StreamSource(dut, "cmd", lb.command_layout, pause=pauses()).start(commands),
             StreamSource(dut, "rows", lb.rows_layout,
                          pause=pauses()).start(words)]
    sink = StreamSink(dut, "windows", lb.windows_layout, pause=pauses())
    tasks.append(sink.start(len(expected)))
    await finish(tasks, dut.clk, 20 * (len(expected) + len(words)) + 200)
    for index, (got, want) in enumerate(zip(sink.beats, expected)):
        assert got == want, f"beat {index}: {got} != {want}"
    if p.get("steady"):
        # rows arrive faster than they are used: no bubble across channels or passes
        assert sink.cycles[-1] - sink.cycles[0] == len(expected) - 1, \
            f"{sink.cycles[-1] - sink.cycles[0] + 1 - len(expected)} bubble cycles"


@cocotb.test()
async def latency(dut):
    """LineBuffer.latency: from the last row word a window needs to the window, for a 1x1
    window (one row) and a 3x3 one (three rows), the command accepted long before."""
    p = params()
    lb = LineBuffer(yp=p["yp"], max_row=p["max_row"])
    B = lb.word_bytes
    for kernel, rows in ((1, 1), (3, 3)):
        await start_clock_and_reset(dut)
        log = TransferLog(dut, rows="rows", windows="windows")
        sink = StreamSink(dut, "windows", lb.windows_layout)
        task = sink.start(1)
        await StreamSource(dut, "cmd", lb.command_layout).send([{
            "channels": 1, "rows_in": rows, "cols_in": B, "out_rows": 1, "groups": 1,
            "pad_top": 0, "pad_left": 0, "stride": 1, "kernel": kernel, "zero_point": 0}])
        await ClockCycles(dut.clk, 10)
        await StreamSource(dut, "rows", lb.rows_layout).send([[[r + 1] * B] for r in range(rows)])
        await finish([task], dut.clk, 100)
        log.stop()
        measured = log.first("windows") - log.cycles["rows"][-1]
        assert measured == lb.latency, f"kernel {kernel}: latency {measured} != {lb.latency}"
