"""cocotb testbench of hw.dma.AxiDma (AxiReader + AxiWriter on one AXI4 port) vs AxiRam."""

import random

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from hw.dma import AxiReader, AxiWriter, beat_layout, cmd_layout
from host.runtime.sim.axi import (ChannelMonitor, check_bursts, CycleCounter, ErrorInjector, add_read_latency,
                              add_write_latency, make_ram, set_axi_pauses)
from host.runtime.sim.runner import params
from host.runtime.sim.streams import (StreamSink, StreamSource, TransferLog, finish, random_pauses, unpack,
                              start_clock_and_reset)

RAM_SIZE = 1 << 20
WRITE_BASE = RAM_SIZE // 2
ADDR_WIDTH = 32


class Env:
    def __init__(self, dut, *, seed, pause=0.0, latency=0):
        p = params()
        self.dut = dut
        self.width = p["data_width"]
        self.lanes = self.width // 8
        self.rng = random.Random(seed)
        self.ram = make_ram(dut, RAM_SIZE)
        self.counter = CycleCounter(dut.clk)
        if latency:
            add_read_latency(self.ram, self.counter, latency)
            add_write_latency(self.ram, self.counter, latency)
        self.injector = ErrorInjector(self.ram)
        self.monitor = ChannelMonitor(dut, self.counter)
        if pause:
            set_axi_pauses(self.ram, self.rng, pause)
        self.pause = pause
        self.cmd_layout = cmd_layout(ADDR_WIDTH)
        self.beat_layout = beat_layout(self.width)
        dut.rd_clear.value = 0
        dut.wr_clear.value = 0
        self.image = bytearray(self.rng.randbytes(RAM_SIZE))
        self.ram.write(0, bytes(self.image))

    def pauses(self):
        return random_pauses(self.rng, self.pause) if self.pause else None

    def expected_read_beats(self, commands):
        beats = []
        for addr, length in commands:
            n = -(-length // self.lanes)
            for i in range(n):
                count = self.lanes if i < n - 1 else length - (n - 1) * self.lanes
                chunk = self.image[addr + i * self.lanes: addr + i * self.lanes + count]
                beats.append((int.from_bytes(chunk, "little"), count, int(i == n - 1)))
        return beats

    def check_read_beats(self, got, commands, prefix_ok=False):
        expected = self.expected_read_beats(commands)
        if not prefix_ok:
            assert len(got) == len(expected), f"{len(got)} beats, expected {len(expected)}"
        assert len(got) <= len(expected)
        for index, (beat, (value, count, last)) in enumerate(zip(got, expected)):
            mask = (1 << (8 * count)) - 1
            assert (beat["count"], beat["last"]) == (count, last), \
                f"beat {index}: count/last {beat['count']}/{beat['last']}, expected {count}/{last}"
            assert beat["data"] & mask == value, \
                f"beat {index}: data {beat['data'] & mask:#x}, expected {value:#x}"

    def write_beats(self, commands, payloads):
        beats = []
        for (addr, length), payload in zip(commands, payloads):
            n = -(-length // self.lanes)
            for i in range(n):
                chunk = payload[i * self.lanes:(i + 1) * self.lanes]
                # bytes beyond count carry garbage: they must never reach memory
                garbage = self.rng.randbytes(self.lanes - len(chunk))
                beats.append({"data": int.from_bytes(chunk + garbage, "little"),
                              "count": len(chunk), "last": int(i == n - 1)})
        return beats

    async def pulse(self, signal):
        signal.value = 1
        await RisingEdge(self.dut.clk)
        signal.value = 0


def layout_commands(lanes, rng, base, lengths_by_offset, gap):
    """Commands at increasing, non-overlapping addresses with ``gap`` guard bytes."""
    commands = []
    cursor = base + gap
    for offset, length in lengths_by_offset:
        addr = (cursor // 64) * 64 + 64 + offset
        commands.append((addr, length))
        cursor = addr + length + gap
    return commands


def sweep_set(lanes):
    short = [(off, length) for off in range(lanes) for length in range(1, 2 * lanes + 2)]
    return short


LONG_COMMANDS = [(4096 - 5, 300), (3 * 4096 - 100 + 3, 5000), (5 * 4096 + 7, 20000),
                 (12 * 4096 - 1, 4097), (16 * 4096, 4096)]


async def collect(sink_valid, sink_ready, sink_payload, clk, layout, out):
    """Free-running sink with ready high; appends unpacked beats to ``out``."""
    sink_ready.value = 1
    while True:
        await ReadOnly()
        if int(sink_valid.value):
            out.append(unpack(layout, sink_payload.value.to_unsigned()))
        await RisingEdge(clk)


async def run_sweep(dut, env, seed):
    lanes = env.lanes
    rng = random.Random(seed)
    short = sweep_set(lanes)
    rng.shuffle(short)
    reads = layout_commands(lanes, rng, 0, short, 0)
    reads += [(a + 262144, n) for a, n in LONG_COMMANDS]
    writes = layout_commands(lanes, rng, WRITE_BASE, short, 2 * lanes + 3)
    writes += [(a + WRITE_BASE + 262144, n) for a, n in LONG_COMMANDS]
    assert max(a + n for a, n in reads) <= WRITE_BASE and max(a + n for a, n in writes) <= RAM_SIZE

    await start_clock_and_reset(dut)
    payloads = [rng.randbytes(n) for _, n in writes]
    rd_cmd = StreamSource(dut, "rd_cmd", env.cmd_layout, pause=env.pauses())
    rd_sink = StreamSink(dut, "rd_data", env.beat_layout, pause=env.pauses())
    wr_cmd = StreamSource(dut, "wr_cmd", env.cmd_layout, pause=env.pauses())
    wr_data = StreamSource(dut, "wr_data", env.beat_layout, pause=env.pauses())
    wr_done = StreamSink(dut, "wr_done", 2, pause=env.pauses())
    n_read_beats = len(env.expected_read_beats(reads))
    tasks = [
        rd_cmd.start({"addr": a, "length": n} for a, n in reads),
        rd_sink.start(n_read_beats),
        wr_cmd.start({"addr": a, "length": n} for a, n in writes),
        wr_data.start(env.write_beats(writes, payloads)),
        wr_done.start(len(writes)),
    ]
    total_beats = n_read_beats + sum(-(-n // lanes) for _, n in writes)
    await finish(tasks, dut.clk, int(total_beats * (12 if env.pause else 3)) + 20000)
    env.check_read_beats(rd_sink.beats, reads)
    await ClockCycles(dut.clk, 20)
    check_bursts(env.monitor.bursts, lanes)
    assert sum(b[2] for b in env.monitor.bursts if b[0] == "ar") == \
        sum((a + n - 1) // lanes - a // lanes + 1 for a, n in reads), "words read != words needed"
    assert sum(b[2] for b in env.monitor.bursts if b[0] == "aw") == \
        sum((a + n - 1) // lanes - a // lanes + 1 for a, n in writes), "words written != needed"
    assert int(dut.rd_error.value) == 0 and int(dut.wr_error.value) == 0
    assert int(dut.rd_busy.value) == 0 and int(dut.wr_busy.value) == 0
    assert int(dut.wr_done__valid.value) == 0, "more done beats than commands"
    for (addr, length), payload in zip(writes, payloads):
        env.image[addr:addr + length] = payload
    got = env.ram.read(WRITE_BASE, RAM_SIZE - WRITE_BASE)
    want = bytes(env.image[WRITE_BASE:])
    if got != want:
        first = next(i for i in range(len(got)) if got[i] != want[i]) + WRITE_BASE
        owner = [c for c in writes if c[0] <= first < c[0] + c[1]]
        raise AssertionError(f"memory differs first at {first:#x} (inside command {owner}; "
                             f"guard byte if empty)")
    return env


@cocotb.test()
async def sweep_no_pauses(dut):
    env = Env(dut, seed=1)
    await run_sweep(dut, env, 11)


@cocotb.test()
async def sweep_random_pauses(dut):
    env = Env(dut, seed=2, pause=0.3)
    await run_sweep(dut, env, 12)


@cocotb.test()
async def outstanding_reads_with_latency(dut):
    """Many short reads under a 60-cycle latency: the reader fills its outstanding window."""
    p = params()
    env = Env(dut, seed=3, latency=60)
    lanes = env.lanes
    reads = [(0x1000 + 256 * i + (i % lanes), 4 * lanes) for i in range(40)]
    reads.append((0x9000 + 3, 256 * lanes * 3 + 5))
    await start_clock_and_reset(dut)
    rd_cmd = StreamSource(dut, "rd_cmd", env.cmd_layout)
    rd_sink = StreamSink(dut, "rd_data", env.beat_layout)
    n_beats = len(env.expected_read_beats(reads))
    await finish([rd_cmd.start({"addr": a, "length": n} for a, n in reads),
                  rd_sink.start(n_beats)], dut.clk, 20000)
    env.check_read_beats(rd_sink.beats, reads)
    check_bursts(env.monitor.bursts, lanes)
    # the long read streams at one beat per cycle once its data flow (latency hidden)
    n_long = -(-reads[-1][1] // lanes)
    span = rd_sink.cycles[-1] - rd_sink.cycles[-n_long] + 1
    assert span <= n_long + n_long // 50 + 4, f"{n_long} beats took {span} cycles"
    assert env.monitor.max_reads_in_flight == p["max_outstanding_reads"], \
        f"at most {env.monitor.max_reads_in_flight} reads in flight"


async def wait_for(dut, signal, cycles, what):
    for _ in range(cycles):
        await ReadOnly()
        done = signal()
        await RisingEdge(dut.clk)
        if done:
            return
    raise AssertionError(f"timed out waiting for {what}")


@cocotb.test()
async def read_error_and_clear(dut):
    env = Env(dut, seed=4, pause=0.2)
    lanes = env.lanes
    await start_clock_and_reset(dut)
    rd_data = []
    cocotb.start_soon(collect(dut.rd_data__valid, dut.rd_data__ready, dut.rd_data__payload,
                              dut.clk, env.beat_layout, rd_data))
    base = 0x20000
    for code in (2, 3):
        env.monitor.r_errors.clear()
        reads = [(base + 3, 3000), (base + 4096 + 5, 3000), (base + 8192 + 1, 3000),
                 (base + 12288, 100)]
        env.injector.ranges = [(base + 4096 + 1500, base + 4096 + 1501)]
        env.injector.code = code
        rd_data.clear()
        rd_cmd = StreamSource(dut, "rd_cmd", env.cmd_layout)
        cmd_task = rd_cmd.start({"addr": a, "length": n} for a, n in reads)
        await wait_for(dut, lambda: int(dut.rd_error.value) != 0, 20000, "rd_error")
        assert int(dut.rd_error.value) == code
        await finish([cmd_task], dut.clk, 5000)      # commands are drained, never stuck
        await ClockCycles(dut.clk, 600)              # in-flight bursts drain
        await ReadOnly()
        assert int(dut.rd_error.value) == code, "error is sticky"
        assert int(dut.rd_data__valid.value) == 0
        assert env.monitor.r_errors, "no error response seen"
        first_error = env.monitor.r_errors[0]
        late = [c for c in env.monitor.new_ar if c > first_error]
        assert not late, f"AR issued at cycles {late} after the error at {first_error}"
        assert env.injector.read_errors > 0
        env.check_read_beats(rd_data, reads, prefix_ok=True)
        await RisingEdge(dut.clk)
        await env.pulse(dut.rd_clear)
        await wait_for(dut, lambda: int(dut.rd_error.value) == 0 and int(dut.rd_busy.value) == 0,
                       2000, "recovery after clear")
        # recovered: a normal read works
        env.injector.ranges = []
        rd_data.clear()
        good = [(base + 16384 + 7, 5 * lanes + 3)]
        await finish([rd_cmd.start({"addr": a, "length": n} for a, n in good)], dut.clk, 2000)
        await wait_for(dut, lambda: len(rd_data) == len(env.expected_read_beats(good)), 3000,
                       "read after recovery")
        env.check_read_beats(rd_data, good)
        base += 0x10000


@cocotb.test()
async def write_error_and_clear(dut):
    env = Env(dut, seed=5, pause=0.2)
    lanes = env.lanes
    await start_clock_and_reset(dut)
    done = []
    cocotb.start_soon(collect(dut.wr_done__valid, dut.wr_done__ready, dut.wr_done__payload,
                              dut.clk, 2, done))
    base = WRITE_BASE + 0x1000
    for code in (2, 3):
        env.monitor.b_errors.clear()
        done.clear()
        writes = [(base + 3, 3000), (base + 4096 + 5, 3000), (base + 8192 + 1, 3000),
                  (base + 12288, 100)]
        bad = (base + 4096 + 1500, base + 4096 + 1501)
        env.injector.ranges = [bad]
        env.injector.code = code
        payloads = [env.rng.randbytes(n) for _, n in writes]
        before = env.ram.read(0, RAM_SIZE)
        wr_cmd = StreamSource(dut, "wr_cmd", env.cmd_layout)
        wr_data = StreamSource(dut, "wr_data", env.beat_layout)
        tasks = [wr_cmd.start({"addr": a, "length": n} for a, n in writes),
                 wr_data.start(env.write_beats(writes, payloads))]
        await wait_for(dut, lambda: int(dut.wr_error.value) != 0, 20000, "wr_error")
        assert int(dut.wr_error.value) == code
        await finish(tasks, dut.clk, 5000)           # producers are drained, never stuck
        await ClockCycles(dut.clk, 600)
        await ReadOnly()
        assert int(dut.wr_error.value) == code, "error is sticky"
        first_error = env.monitor.b_errors[0]
        late_aw = [c for c in env.monitor.new_aw if c > first_error]
        late_w = [c for c in env.monitor.strobed_w if c > first_error]
        assert not late_aw, f"AW issued at {late_aw} after the error at {first_error}"
        assert not late_w, f"strobed W beats at {late_w} after the error at {first_error}"
        assert len(done) <= 1, "done reported for a command that failed or never ran"
        after = env.ram.read(0, RAM_SIZE)
        # nothing outside the commands' ranges changed, and the faulting byte was not written
        for i in range(0, RAM_SIZE, 4096):
            if before[i:i + 4096] != after[i:i + 4096]:
                for j in range(i, i + 4096):
                    if before[j] != after[j]:
                        inside = any(a <= j < a + n for a, n in writes)
                        assert inside and not bad[0] <= j < bad[1], f"byte {j:#x} written"
        await RisingEdge(dut.clk)
        await env.pulse(dut.wr_clear)
        await wait_for(dut, lambda: int(dut.wr_error.value) == 0 and int(dut.wr_busy.value) == 0,
                       2000, "recovery after clear")
        env.injector.ranges = []
        done.clear()
        good = [(base + 16384 + 7, 5 * lanes + 3)]
        payload = env.rng.randbytes(good[0][1])
        before = bytearray(env.ram.read(0, RAM_SIZE))
        await finish([wr_cmd.start({"addr": a, "length": n} for a, n in good),
                      wr_data.start(env.write_beats(good, [payload]))], dut.clk, 2000)
        await wait_for(dut, lambda: len(done) == 1, 3000, "done after recovery")
        before[good[0][0]:good[0][0] + good[0][1]] = payload
        assert env.ram.read(0, RAM_SIZE) == bytes(before), "write after recovery is wrong"
        base += 0x10000


@cocotb.test()
async def latency(dut):
    """AxiReader.latency (first R beat to first data beat, aligned), .ar_latency (cmd to
    ARVALID); AxiWriter.latency (first data beat to WVALID, AW issued before), .aw_latency
    (cmd to AWVALID). DRAM without latency or pauses."""
    env = Env(dut, seed=13)
    lanes = env.lanes
    reader = AxiReader(data_width=env.width, addr_width=ADDR_WIDTH)
    writer = AxiWriter(data_width=env.width, addr_width=ADDR_WIDTH)
    await start_clock_and_reset(dut)
    log = TransferLog(dut, rd_cmd="rd_cmd", ar=("m_axi__arvalid", None),
                      r=("m_axi__rvalid", "m_axi__rready"), rd_data="rd_data",
                      wr_cmd="wr_cmd", aw=("m_axi__awvalid", None), wr_data="wr_data",
                      w=("m_axi__wvalid", None))
    reads = [(0x2000, 3 * lanes)]
    rd_sink = StreamSink(dut, "rd_data", env.beat_layout)
    rd_cmd = StreamSource(dut, "rd_cmd", env.cmd_layout)
    await finish([rd_cmd.start({"addr": a, "length": n} for a, n in reads), rd_sink.start(3)],
                 dut.clk, 200)
    env.check_read_beats(rd_sink.beats, reads)
    writes = [(WRITE_BASE + 0x1000, 2 * lanes)]
    wr_done = StreamSink(dut, "wr_done", 2)
    done = wr_done.start(1)
    await StreamSource(dut, "wr_cmd", env.cmd_layout).send({"addr": a, "length": n} for a, n in writes)
    await ClockCycles(dut.clk, 10)                     # AW goes out first
    await StreamSource(dut, "wr_data", env.beat_layout).send(
        env.write_beats(writes, [bytes(range(2 * lanes))]))
    await finish([done], dut.clk, 200)
    log.stop()
    measured = {"reader": log.latency("r", "rd_data"), "reader AR": log.latency("rd_cmd", "ar"),
                "writer": log.latency("wr_data", "w"), "writer AW": log.latency("wr_cmd", "aw")}
    want = {"reader": reader.latency, "reader AR": reader.ar_latency,
            "writer": writer.latency, "writer AW": writer.aw_latency}
    assert measured == want, f"latencies {measured} != {want}"
