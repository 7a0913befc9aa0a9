"""The command queue (hw/control/queue.py) in the generated accelerator, on the fast engine
and (random AXI pauses, DMA faults) on cocotb.

A list is three dependent layers (each reads the previous one's output: 3x3, 1x1,
depthwise 3x3 stride 2) laid out with ``prepare_batch``; its command records and a trace
area follow the layers in DRAM. Checks: outputs equal the golden model chained, each trace
record equals the counters of the same layer run alone, one interrupt at the end,
``QUEUE_INDEX``; every descriptor rule on the middle command (stops there, writes nothing
for it or after it), the queue's own refusals, soft reset mid-list, lists of one and of
the maximum length, DMA errors on a fetch and on a trace write.
"""

import numpy as np
import pytest

from hw.config import AccelConfig
from hw.contract import (COMMAND_BYTES, CONTROL_SOFT_RESET, CONTROL_START_QUEUE, STATUS_BUSY, TRACE_BYTES,
                         CommandRecord, ErrorCode, pack_record, register_map, unpack_record)
from host.compiler.planner import layer_tiles
from host.golden.machine import descriptor_error
from host.golden.quant import QuantConv
from host.runtime import driver
from host.runtime.sim import prepare_batch, rtlsim, run_layers
from host.runtime.sim.layers import random_conv

CFG = AccelConfig()
LATENCY = 20


def chain(seed=1):
    """Three layers, each reading the previous one's output, and the first one's input."""
    rng = np.random.default_rng(seed)
    conv3 = random_conv(rng, 8, 12, 3, 1, 1, True)
    conv1 = random_conv(rng, 12, 9, 1, 1, 0, False)
    dw = QuantConv(weight=rng.integers(-128, 128, (9, 1, 3, 3)).astype(np.int8),
                   bias_q=rng.integers(-3000, 3000, 9), multiplier=np.float32(1 / 3000),
                   input_zero_point=int(conv1.output_zero_point), output_zero_point=120,
                   stride=2, padding=1, groups=9)
    conv1.input_zero_point = conv3.output_zero_point
    x = rng.integers(0, 256, (1, 8, 10, 11), dtype=np.uint8)
    return [conv3, conv1, dw], x


class Queue:
    """A chained list in one DRAM image: ``memory``, ``list_addr``, ``trace_addr``,
    ``records`` (u8 per command), ``runs`` (each layer's LayerRun, with its input at the
    previous layer's output), ``expected`` outputs."""

    def __init__(self, convs, x, repeat=1):
        inputs, h = [x], x
        for conv in convs[:-1]:
            h = conv(h)
            inputs.append(h)
        self.expected = [conv(i)[0] for conv, i in zip(convs, inputs)]
        runs, memory = prepare_batch(CFG, [(c, i, layer_tiles(CFG, c, *i.shape[2:])) for c, i in zip(convs, inputs)])
        for prev, run in zip(runs, runs[1:]):                 # chain: read the previous output
            run.descriptor["input_addr"] = prev.output_addr
        self.runs = runs * repeat
        self.records = [driver.command_record(r.descriptor, r.table_addr, r.zero_point) for r in self.runs]
        self.list_addr = memory.size
        self.trace_addr = self.list_addr + len(self.records) * COMMAND_BYTES + 64
        size = self.trace_addr + len(self.records) * TRACE_BYTES + 4096
        self.memory = np.zeros(size, dtype=np.uint8)
        self.memory[:memory.size] = memory
        for run in runs[1:]:                                  # the chained inputs start empty
            addr, n = run.dram.regions["input"]
            self.memory[addr:addr + n] = 0
        self.write_records()
        self.window = (0, size)

    def write_records(self):
        for i, rec in enumerate(self.records):
            self.memory[self.list_addr + i * COMMAND_BYTES:self.list_addr + (i + 1) * COMMAND_BYTES] = rec

    def set(self, index, **fields):
        record = unpack_record(CommandRecord, self.records[index])
        record.update(fields)
        self.records[index] = pack_record(CommandRecord, record)
        self.write_records()

    def start(self, length=None, list_addr=None, trace_addr=None, window=None, **layer):
        return {"run": None, "writes": driver.window_writes(CFG, *(window or self.window)),
                "queue": (self.list_addr if list_addr is None else list_addr,
                          len(self.records) if length is None else length,
                          self.trace_addr if trace_addr is None else trace_addr),
                "timeout_cycles": 200_000 * max(1, len(self.records)), **layer}

    def output(self, memory, index):
        run = self.runs[index]
        return memory[run.output_addr:run.output_addr + int(np.prod(run.output_shape))].reshape(run.output_shape)

    def trace(self, memory, count):
        return driver.trace_records(memory[self.trace_addr:self.trace_addr + count * TRACE_BYTES])


def written(before, after):
    """[start, end) ranges of bytes that changed."""
    changed = np.nonzero(before != after)[0]
    return changed


def assert_only(queue, result, outputs, traces):
    """The bytes that changed are in the given outputs and trace records only."""
    allowed = np.zeros(queue.memory.size, dtype=bool)
    for i in outputs:
        run = queue.runs[i]
        allowed[run.output_addr:run.output_addr + int(np.prod(run.output_shape))] = True
    allowed[queue.trace_addr:queue.trace_addr + traces * TRACE_BYTES] = True
    changed = written(queue.memory, result["memory"])
    assert allowed[changed].all(), f"bytes outside the outputs changed: {changed[~allowed[changed]][:8]}"


def test_chained_list_runs_in_order_with_a_trace_per_command():
    convs, x = chain()
    queue = Queue(convs, x)
    # the same layers, one START each (chained through DRAM as well), for their counters
    singles = run_layers(CFG, [{"run": r, "writes": r.writes_with(CFG, window=queue.window)} for r in queue.runs],
                         latency=LATENCY, memory=queue.memory)
    result = run_layers(CFG, [queue.start()], latency=LATENCY, memory=queue.memory, dump=True)
    layer = result["layers"][0]
    assert layer["error_code"] == 0 and layer["irq"] and layer["status"] & 0b110 == 0b010
    assert layer["queue_index"] == 3
    for i, expected in enumerate(queue.expected):
        assert np.array_equal(queue.output(result["memory"], i), expected), f"command {i}"
    trace = queue.trace(result["memory"], 3)
    for i, (record, single) in enumerate(zip(trace, singles["layers"])):
        assert record["index"] == i and record["error_code"] == 0
        assert {k: record[k] for k in single["counters"]} == single["counters"], f"command {i}"
    # the queue's own cost: a fetch and a trace write per command, a few hundred cycles
    overhead = layer["wall_cycles"] - sum(s["wall_cycles"] for s in singles["layers"])
    assert 0 < overhead < 3 * 4 * (LATENCY + 40), overhead
    assert_only(queue, result, [0, 1, 2], 3)


def corrupted_cases():
    """(code, fields) on the middle command: every descriptor rule, and BAD_COMMAND."""
    cases = [
        (ErrorCode.BAD_KERNEL, {"kernel_size": 2}),
        (ErrorCode.BAD_STRIDE, {"stride": 3}),
        (ErrorCode.BAD_PADDING, {"padding": 1}),
        (ErrorCode.ZERO_SIZE, {"tile_xo": 0}),
        (ErrorCode.BAD_PITCH, {"in_pitch": 3}),
        (ErrorCode.BAD_CHANNEL_TILE, {"tile_c": 5}),
        (ErrorCode.BAD_DEPTHWISE, {"depthwise": 1}),
        (ErrorCode.LINE_BUFFER_OVERFLOW, {"kernel_size": 3, "padding": 1, "width": 300, "in_pitch": 300,
                                          "out_pitch": 300, "tile_yo": 300}),
        (ErrorCode.TILE_ROWS_OVERFLOW, {"height": 5000, "tile_xo": 5000}),
        (ErrorCode.STREAMING_BUFFER_OVERFLOW, {"channels": 2000, "tile_c": 2000}),
        (ErrorCode.STATIONARY_BUFFER_OVERFLOW, {"kernels": 20000, "tile_k": 20000}),
        (ErrorCode.OUTPUT_BUFFER_OVERFLOW, {"height": 400, "tile_xo": 400, "tile_k": 9}),
        (ErrorCode.ADDRESS_OVERFLOW, {"output_addr": (1 << 40) - 100}),
        (ErrorCode.OUTSIDE_WINDOW, {"output_addr": 1 << 30}),
        (ErrorCode.BAD_COMMAND, {"op": 2}),                  # neither CONV nor POOL
        (ErrorCode.BAD_COMMAND, {"kernel_size": 5}),         # wider than the descriptor's 2 bits
        (ErrorCode.BAD_COMMAND, {"depthwise": 2}),
    ]
    return cases


def test_each_rule_on_the_middle_command_stops_the_queue_there():
    convs, x = chain(seed=2)
    queue = Queue(convs, x)
    starts = []
    desc = queue.runs[1].descriptor
    for code, fields in corrupted_cases():
        if code != ErrorCode.BAD_COMMAND:      # the host's own rules agree on the code
            d = {**desc, **fields}
            assert descriptor_error(CFG, d, queue.runs[1].table_addr, queue.window) == code, (code, fields)
    for code, fields in corrupted_cases():
        q = Queue(convs, x)
        q.set(1, **fields)
        starts.append((q, code, fields))
    # one simulation per case (each its own image); all on the fast engine
    for q, code, fields in starts:
        result = run_layers(CFG, [q.start()], latency=LATENCY, memory=q.memory, dump=True)
        layer = result["layers"][0]
        assert layer["error_code"] == code, f"{fields}: {ErrorCode(layer['error_code']).name}"
        assert layer["queue_index"] == 1 and layer["irq"] and layer["status"] & 0b110 == 0b110
        assert np.array_equal(q.output(result["memory"], 0), q.expected[0])
        assert_only(q, result, [0], 1)          # nothing of the failing command or after it
        assert layer["counters"]["dram_read_bytes"] == 0 or code == ErrorCode.BAD_COMMAND


def test_queue_refusals_touch_no_dram():
    convs, x = chain(seed=3)
    queue = Queue(convs, x)
    top = queue.memory.size
    cases = [
        (ErrorCode.BAD_QUEUE, {"length": 0}),
        (ErrorCode.BAD_QUEUE, {"length": CFG.max_queue_length + 1}),
        (ErrorCode.QUEUE_OUTSIDE_WINDOW, {"list_addr": top - COMMAND_BYTES}),          # list past the window
        (ErrorCode.QUEUE_OUTSIDE_WINDOW, {"window": (queue.list_addr + 1, top)}),       # list before it
        (ErrorCode.QUEUE_OUTSIDE_WINDOW, {"trace_addr": top - TRACE_BYTES}),            # trace past it
        (ErrorCode.QUEUE_OUTSIDE_WINDOW, {"list_addr": (1 << 40) - 2 * COMMAND_BYTES,
                                          "window": (0, 1 << 41)}),                     # past the address space
        (ErrorCode.QUEUE_OUTSIDE_WINDOW, {"window": (0, 0)}),                           # the reset window
    ]
    result = run_layers(CFG, [queue.start(**fields) for _, fields in cases] + [queue.start()],
                        latency=LATENCY, memory=queue.memory, dump=True)
    for (code, fields), layer in zip(cases, result["layers"]):
        assert layer["error_code"] == code, f"{fields}: {ErrorCode(layer['error_code']).name}"
        assert layer["irq"] and layer["queue_index"] == 0
        assert layer["wall_cycles"] < 20, "the queue's checks took more than a few cycles"
    last = result["layers"][-1]
    assert last["error_code"] == 0 and last["queue_index"] == 3      # and the next start runs
    assert_only(queue, result, [0, 1, 2], 3)


def test_list_of_one_and_single_layer_start_still_work():
    convs, x = chain(seed=4)
    queue = Queue(convs[:1], x)
    run = queue.runs[0]
    result = run_layers(CFG, [queue.start(), {"run": run, "writes": run.writes_with(CFG, window=queue.window)}],
                        latency=LATENCY, memory=queue.memory, dump=True)
    as_queue, single = result["layers"]
    assert as_queue["error_code"] == 0 and as_queue["queue_index"] == 1
    assert single["error_code"] == 0
    assert np.array_equal(np.asarray(single["output"]).reshape(run.output_shape), queue.expected[0])
    trace = queue.trace(result["memory"], 1)[0]
    assert {k: trace[k] for k in single["counters"]} == single["counters"]


def test_single_layer_register_too_wide_is_refused():
    convs, x = chain(seed=5)
    queue = Queue(convs[:1], x)
    run = queue.runs[0]
    rm = register_map(CFG)
    writes = run.writes_with(CFG, window=queue.window) + [(rm["DESC_KERNEL_SIZE"].offset, 7)]
    result = run_layers(CFG, [{"run": run, "writes": writes}], latency=LATENCY, memory=queue.memory)
    assert result["layers"][0]["error_code"] == ErrorCode.BAD_COMMAND
    assert result["changed"] is None


def test_maximum_length_list():
    """``max_queue_length`` commands (a tiny layer again and again); one more is refused
    (``test_queue_refusals_touch_no_dram``)."""
    rng = np.random.default_rng(6)
    conv = random_conv(rng, 1, 1, 3, 1, 0, False)
    x = rng.integers(0, 256, (1, 1, 3, 3), dtype=np.uint8)
    queue = Queue([conv], x, repeat=CFG.max_queue_length)
    result = run_layers(CFG, [queue.start(timeout_cycles=10_000_000)], latency=0, memory=queue.memory,
                        dump=True)
    layer = result["layers"][0]
    assert layer["error_code"] == 0 and layer["queue_index"] == CFG.max_queue_length
    assert np.array_equal(queue.output(result["memory"], 0), queue.expected[0])
    trace = queue.trace(result["memory"], CFG.max_queue_length)
    assert [t["index"] for t in trace] == list(range(CFG.max_queue_length))


def test_soft_reset_mid_list_then_a_full_list():
    convs, x = chain(seed=7)
    queue = Queue(convs, x)
    rm = register_map(CFG)
    h = rtlsim.Harness(CFG)
    try:
        h.load(queue.memory)
        h.reset(LATENCY)
        for offset, value in driver.window_writes(CFG, *queue.window) + \
                driver.queue_writes(CFG, queue.list_addr, 3, queue.trace_addr):
            h.write(offset, value)
        h.write(rm["CONTROL"].offset, CONTROL_START_QUEUE)
        while h.read(rm["QUEUE_INDEX"].offset) < 1:           # the second command is running
            h.run(50)
        h.run(300)
        h.write(rm["CONTROL"].offset, CONTROL_SOFT_RESET)
        while h.read(rm["STATUS"].offset) & STATUS_BUSY:
            h.run(16)
        assert h.read(rm["ERROR_CODE"].offset) == 0 and not h.read(rm["IRQ_STATUS"].offset)
        h.write(rm["IRQ_ENABLE"].offset, 1)
        h.write(rm["CONTROL"].offset, CONTROL_START_QUEUE)
        irq, _ = h.wait_irq(1_000_000)
        assert irq and h.read(rm["ERROR_CODE"].offset) == 0 and h.read(rm["QUEUE_INDEX"].offset) == 3
        memory = h.dump(0, queue.memory.size)
    finally:
        h.close()
    for i, expected in enumerate(queue.expected):
        assert np.array_equal(queue.output(memory, i), expected), f"command {i}"


@pytest.mark.parametrize("where", ["fetch", "trace"])
def test_dma_errors_on_the_queue_own_transfers(where):
    """A read error on the second command's fetch, or a write error on the first trace
    record, stops the queue with the DMA error; the next list runs. With random AXI
    pauses on every channel (cocotb)."""
    convs, x = chain(seed=8)
    queue = Queue(convs, x)
    if where == "fetch":
        at = queue.list_addr + COMMAND_BYTES + 70
        fault, code, index = {"ranges": [[at, at + 1]], "code": 2}, ErrorCode.DMA_READ_ERROR, 1
    else:
        at = queue.trace_addr + 20
        fault, code, index = {"ranges": [[at, at + 1]], "code": 3}, ErrorCode.DMA_WRITE_ERROR, 0
    result = run_layers(CFG, [queue.start(fault=fault), queue.start()], latency=LATENCY, pause=0.2,
                        memory=queue.memory, dump=True)
    failed, good = result["layers"]
    assert failed["error_code"] == code and failed["irq"] and failed["queue_index"] == index
    assert good["error_code"] == 0 and good["queue_index"] == 3
    for i, expected in enumerate(queue.expected):
        assert np.array_equal(queue.output(result["memory"], i), expected), f"command {i}"
