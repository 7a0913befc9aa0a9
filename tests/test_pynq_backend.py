"""PYNQ backend against a fake ``pynq`` module that records every register and buffer
access and emulates the accelerator: on START it rebuilds the layer from the registers
and the DRAM buffer (weights, parameters, table, input) and runs the golden model."""

import sys
import types

import numpy as np
import pytest

from host.runtime import pynq_backend
from host.runtime.driver import (DriverError, address_registers, prepare_layer, rebase_writes,
                         register_writes)
from host.golden.quant import QuantConv
from hw.config import CHANNEL_BLOCK, AccelConfig
from hw.contract import (CONTROL_START, MAGIC, STATUS_DONE, STATUS_ERROR, ErrorCode, weight_size,
                         layer_extents, register_map)

PHYS = 0x1_FFFF_8000        # buffer physical address: 4 KiB aligned, rebasing carries into _HI
REG_BASE = 0x8000_0000


class FakeHardware:
    """Register file, DRAM buffers and event log shared by the fake pynq objects."""

    def __init__(self, bitstream_cfg, magic=MAGIC, fail_with=0):
        self.rm = register_map(bitstream_cfg)
        self.regs = {r.offset: r.reset for r in self.rm}
        self.regs[self.rm["MAGIC"].offset] = magic
        self.log = []
        self.buffers = []
        self.fail_with = fail_with
        self.irq = False
        self.layers = 0

    def reg(self, name):
        return self.regs[self.rm[name].offset]

    def field(self, name):
        try:
            return self.reg(f"DESC_{name.upper()}")
        except KeyError:
            return self.reg(f"DESC_{name.upper()}_LO") | self.reg(f"DESC_{name.upper()}_HI") << 32

    def dram(self, addr, length):
        for buf in self.buffers:
            if buf.device_address <= addr and addr + length <= buf.device_address + buf.size:
                start = addr - buf.device_address
                return buf.view(np.ndarray)[start:start + length]
        raise IndexError(f"DRAM access {addr:#x}+{length} outside every buffer")

    def write(self, offset, value):
        self.log.append(("write", offset, value))
        rm = self.rm
        if offset == rm["CONTROL"].offset:
            if value & CONTROL_START:
                self.start()
        elif offset == rm["IRQ_STATUS"].offset:
            self.regs[offset] &= ~value
        else:
            self.regs[offset] = value
        self.irq = bool(self.reg("IRQ_ENABLE") & self.reg("IRQ_STATUS") & 1)

    def read(self, offset):
        self.log.append(("read", offset))
        return self.regs.get(offset, 0)

    def start(self):
        """Run the layer the registers describe on the golden model."""
        self.layers += 1
        code = self.fail_with
        if not code and not self.inside_window():
            code = ErrorCode.OUTSIDE_WINDOW
        if not code:
            try:
                self.compute()
            except IndexError:
                code = ErrorCode.DMA_READ_ERROR
        self.regs[self.rm["ERROR_CODE"].offset] = int(code)
        self.regs[self.rm["STATUS"].offset] = STATUS_DONE | (STATUS_ERROR if code else 0)
        self.regs[self.rm["IRQ_STATUS"].offset] = 1
        self.regs[self.rm["CYCLES_LO"].offset] = 1000 * self.layers
        self.regs[self.rm["DRAM_READ_BYTES_HI"].offset] = self.layers

    def window(self):
        return (self.reg("WINDOW_BASE_LO") | self.reg("WINDOW_BASE_HI") << 32,
                self.reg("WINDOW_SIZE_LO") | self.reg("WINDOW_SIZE_HI") << 32)

    def inside_window(self):
        """The hardware's window check: every range the layer touches in the window."""
        desc = {name: self.field(name) for name in (
            "input_addr", "weight_addr", "params_addr", "output_addr", "in_pitch", "out_pitch",
            "channels", "height", "kernels", "kernel_size", "stride", "padding")}
        base, size = self.window()
        table_addr = self.reg("TABLE_ADDR_LO") | self.reg("TABLE_ADDR_HI") << 32
        return all(base <= start and end <= base + size
                   for start, end in layer_extents(desc, table_addr).values())

    def compute(self):
        f = self.field
        c, h, w, k = f("channels"), f("height"), f("width"), f("kernels")
        r, stride, pad = f("kernel_size"), f("stride"), f("padding")
        in_pitch, out_pitch = f("in_pitch"), f("out_pitch")
        x = self.dram(f("input_addr"), c * h * in_pitch).reshape(c, h, in_pitch)[:, :, :w]
        depthwise = self.field("depthwise")
        raw = self.dram(f("weight_addr"), weight_size(k, c, r, depthwise)).view(np.int8)
        if depthwise:                   # (K, 1, 3, 3)
            weight = raw.reshape(k, 1, r, r)
        elif r == 1:                    # channel-blocked (ceil(C / 9), K, 9)
            weight = raw.reshape(-1, k, CHANNEL_BLOCK).transpose(1, 0, 2).reshape(k, -1)[:, :c]
            weight = weight.reshape(k, c, 1, 1)
        else:
            weight = raw.reshape(k, c, r, r)
        params = self.dram(f("params_addr"), k * 16).reshape(k, 16)
        table_addr = self.reg("TABLE_ADDR_LO") | self.reg("TABLE_ADDR_HI") << 32
        table = self.dram(table_addr, 256)
        assert len(set(params[:, 8])) == len(set(params[:, 9])) == len(set(params[:, 10])) == 1
        conv = QuantConv(weight=weight.copy(), bias_q=params[:, 0:4].copy().view("<i4").reshape(k),
                         multiplier=params[:, 4:8].copy().view("<f4").reshape(k),
                         input_zero_point=self.reg("INPUT_ZERO_POINT") & 0xFF,
                         output_zero_point=int(params[0, 8]), lo=int(params[0, 9]),
                         hi=int(params[0, 10]), stride=stride, padding=pad, table=table.copy(),
                         groups=c if depthwise else 1)
        y = conv(x[None].copy())[0]
        xo, yo = y.shape[1:]
        out = self.dram(f("output_addr"), k * xo * out_pitch).reshape(k, xo, out_pitch)
        out[:, :, :yo] = y


def make_fake_pynq(hw, with_interrupt=True):
    class MMIO:
        def __init__(self, base, length):
            hw.log.append(("mmio", base, length))
            assert base == REG_BASE and length >= hw.rm.size

        def read(self, offset, length=4):
            return hw.read(offset)

        def write(self, offset, value):
            hw.write(offset, value)

    class Buffer(np.ndarray):
        def flush(self):
            hw.log.append(("flush", bytes(self.view(np.ndarray))))

        def invalidate(self):
            hw.log.append(("invalidate",))

        def freebuffer(self):
            hw.log.append(("free",))

    def allocate(shape, dtype):
        buf = np.zeros(shape, dtype=dtype).view(Buffer)
        buf.device_address = PHYS + 0x100000 * len(hw.buffers)
        hw.buffers.append(buf)
        hw.log.append(("allocate", buf.nbytes))
        return buf

    class Interrupt:
        def __init__(self, pin):
            assert pin == "dpegen_0/irq"
            hw.log.append(("interrupt", pin))

        async def wait(self):
            hw.log.append(("wait",))
            assert hw.irq, "interrupt waited on while irq is low forever"

    class Overlay:
        def __init__(self, bitfile, download=True):
            hw.log.append(("overlay", bitfile, download))
            self.ip_dict = {
                "axi_intc_0": {"phys_addr": 0x8001_0000, "addr_range": 0x10000,
                               "type": "xilinx.com:ip:axi_intc:4.1"},
                "dpegen_0": {"phys_addr": REG_BASE, "addr_range": 0x1000,
                             "type": "xilinx.com:module_ref:dpegen_axi:1.0"},
            }
            self.interrupt_pins = ({"dpegen_0/irq": {"controller": "axi_intc_0", "index": 0}}
                                   if with_interrupt else {})

    module = types.ModuleType("pynq")
    module.MMIO, module.allocate, module.Interrupt, module.Overlay = MMIO, allocate, Interrupt, Overlay
    return module


@pytest.fixture
def fake(monkeypatch):
    def install(bitstream_cfg=AccelConfig(), **kw):
        hw = FakeHardware(bitstream_cfg, **{k: v for k, v in kw.items() if k != "with_interrupt"})
        monkeypatch.setitem(sys.modules, "pynq", make_fake_pynq(hw, kw.get("with_interrupt", True)))
        monkeypatch.setattr(pynq_backend, "_OPEN", {})
        return hw
    return install


def make_conv(rng, c=5, k=7, kernel=3, stride=1, padding=1):
    weight = rng.integers(-128, 128, size=(k, c, kernel, kernel)).astype(np.int8)
    return QuantConv(weight=weight, bias_q=rng.integers(-5000, 5000, size=k),
                     multiplier=np.float32(1.0 / (np.sqrt(c * kernel * kernel) * 128)),
                     input_zero_point=113, output_zero_point=100, lo=3, hi=250,
                     table=rng.permutation(256).astype(np.uint8), stride=stride, padding=padding)


def writes_of(hw):
    return [(e[1], e[2]) for e in hw.log if e[0] == "write"]


@pytest.mark.parametrize("mismatch,message", [
    ({"kp": 4}, "kp is 4 in the bitstream, 3 in the configuration"),
    ({"axi_data_width": 64}, "axi_data_width is 64 in the bitstream, 128 in the configuration"),
])
def test_identification_mismatch_refused_first(fake, mismatch, message):
    hw = fake(AccelConfig(**mismatch))
    with pytest.raises(DriverError, match=message):
        pynq_backend.PynqAccelerator(AccelConfig(), "dpegen.bit")
    assert writes_of(hw) == []
    assert not any(e[0] in ("allocate", "flush", "interrupt") for e in hw.log)
    read = {e[1] for e in hw.log if e[0] == "read"}
    rm = register_map()
    assert rm["MAGIC"].offset in read and rm[f"CFG_{next(iter(mismatch)).upper()}"].offset in read


def test_not_dpegen_refused(fake):
    hw = fake(magic=0x12345678)
    with pytest.raises(DriverError, match="not a dpegen accelerator"):
        pynq_backend.run_conv(AccelConfig(), make_conv(np.random.default_rng(0)),
                              np.zeros((1, 5, 6, 6), np.uint8), bitfile="dpegen.bit")
    assert writes_of(hw) == []


@pytest.mark.parametrize("with_interrupt", [True, False])
def test_write_sequence_matches_sim_backend(fake, with_interrupt):
    """The register writes equal the simulation testbench's for the same layer:
    the layer's writes (addresses + buffer base), IRQ_ENABLE=1, CONTROL=START,
    then IRQ_STATUS=1 after the status and counters were read."""
    cfg = AccelConfig()
    hw = fake(with_interrupt=with_interrupt)
    rng = np.random.default_rng(1)
    conv = make_conv(rng)
    x = rng.integers(0, 256, size=(1, 5, 9, 11), dtype=np.uint8)
    y, counters = pynq_backend.run_conv(cfg, conv, x, bitfile="dpegen.bit")
    run = prepare_layer(cfg, conv, x)
    rm = register_map(cfg)
    desc = dict(run.descriptor)
    for name in ("input_addr", "weight_addr", "params_addr", "output_addr"):
        desc[name] += PHYS
    window = (PHYS, run.dram.memory.size)          # the whole buffer
    expected = (register_writes(cfg, desc, run.table_addr + PHYS, conv.input_zero_point, window)
                + [(rm["IRQ_ENABLE"].offset, 1), (rm["CONTROL"].offset, CONTROL_START)]
                + [(rm["IRQ_STATUS"].offset, 1)])
    assert writes_of(hw) == expected
    # the image is in the buffer (flushed) before the first register write, the
    # interrupt or STATUS is awaited after START, the buffer is invalidated before reading
    kinds = [e[0] for e in hw.log]
    first_write = kinds.index("write")
    flushes = [e for e in hw.log if e[0] == "flush"]
    assert len(flushes) == 1 and kinds.index("flush") < first_write
    assert flushes[0][1][:run.dram.memory.size] == run.dram.memory.tobytes()
    start = hw.log.index(("write", rm["CONTROL"].offset, CONTROL_START))
    after = hw.log[start + 1:]
    if with_interrupt:
        assert after[0] == ("wait",)
    else:
        assert ("interrupt", "dpegen_0/irq") not in hw.log
        assert after[0] == ("read", rm["STATUS"].offset)
    assert kinds.index("invalidate") > start
    assert np.array_equal(y, conv(x))
    assert counters["cycles"] == 1000 and counters["dram_read_bytes"] == 1 << 32
    assert "wall_seconds" in counters


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 1), (3, 2, 1), (3, 1, 0), (1, 1, 0), (1, 2, 0)])
def test_output_matches_golden(fake, kernel, stride, padding):
    fake()
    rng = np.random.default_rng(kernel * 10 + stride + padding)
    conv = make_conv(rng, c=6, k=9, kernel=kernel, stride=stride, padding=padding)
    x = rng.integers(0, 256, size=(2, 6, 13, 10), dtype=np.uint8)
    y, counters = pynq_backend.run_conv(AccelConfig(), conv, x, bitfile="dpegen.bit")
    assert y.dtype == np.uint8 and np.array_equal(y, conv(x))
    assert counters["cycles"] == 1000 + 2000          # summed over the batch of 2


def test_tiled_layer(fake):
    """Explicit small tiles: the descriptor's tile registers pass through unchanged."""
    hw = fake()
    rng = np.random.default_rng(7)
    conv = make_conv(rng, c=8, k=12)
    x = rng.integers(0, 256, size=(1, 8, 12, 12), dtype=np.uint8)
    tiles = {"k": 6, "c": 4, "xo": 5, "yo": 8}
    y, _ = pynq_backend.run_conv(AccelConfig(), conv, x, bitfile="dpegen.bit", tiles=tiles)
    assert np.array_equal(y, conv(x))
    rm = register_map()
    written = dict(writes_of(hw))
    assert [written[rm[f"DESC_TILE_{n.upper()}"].offset] for n in tiles] == list(tiles.values())


def test_accelerator_error_reported(fake):
    hw = fake(fail_with=ErrorCode.DMA_WRITE_ERROR)
    rng = np.random.default_rng(2)
    with pytest.raises(DriverError, match="DMA_WRITE_ERROR"):
        pynq_backend.run_conv(AccelConfig(), make_conv(rng), rng.integers(0, 256, (1, 5, 6, 6), dtype=np.uint8),
                              bitfile="dpegen.bit")
    assert writes_of(hw)[-1] == (register_map()["IRQ_STATUS"].offset, 1)


def test_pynq_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynq", None)
    with pytest.raises(ImportError, match="PYNQ image"):
        pynq_backend.PynqAccelerator(AccelConfig(), "dpegen.bit")


def test_rebase_writes():
    cfg = AccelConfig()
    rng = np.random.default_rng(3)
    conv = make_conv(rng)
    run = prepare_layer(cfg, conv, rng.integers(0, 256, (1, 5, 6, 6), dtype=np.uint8))
    offset = 0xFFFF_F000 + (5 << 32)
    rebased = rebase_writes(cfg, run.writes, offset)
    rm = register_map(cfg)
    by_offset = dict(rebased)
    for name in ("input_addr", "weight_addr", "params_addr", "output_addr"):
        upper = name.upper()
        value = by_offset[rm[f"DESC_{upper}_LO"].offset] | by_offset[rm[f"DESC_{upper}_HI"].offset] << 32
        assert value == run.descriptor[name] + offset
    table = by_offset[rm["TABLE_ADDR_LO"].offset] | by_offset[rm["TABLE_ADDR_HI"].offset] << 32
    assert table == run.table_addr + offset
    addr_offsets = {o for pair in address_registers(cfg).values() for o in pair}
    assert len(addr_offsets) == 12
    window = by_offset[rm["WINDOW_BASE_LO"].offset] | by_offset[rm["WINDOW_BASE_HI"].offset] << 32
    assert window == run.window[0] + offset
    for (o1, v1), (o2, v2) in zip(run.writes, rebased):
        assert o1 == o2
        if o1 not in addr_offsets:
            assert v1 == v2
    assert rebase_writes(cfg, run.writes, 0) == run.writes
    with pytest.raises(ValueError, match="address space"):
        rebase_writes(cfg, run.writes, 1 << cfg.axi_addr_width)
    with pytest.raises(ValueError, match="both halves"):
        rebase_writes(cfg, run.writes[1:], PHYS)


def test_window_is_the_buffer(fake):
    """The window registers hold the buffer's physical range, written before START, and
    follow the buffer when a larger layer reallocates it."""
    hw = fake()
    rng = np.random.default_rng(4)
    cfg = AccelConfig()
    rm = register_map(cfg)
    accel = pynq_backend.PynqAccelerator(cfg, "dpegen.bit")
    for c, size in ((5, 6), (5, 40)):
        conv = make_conv(rng, c=c)
        x = rng.integers(0, 256, (1, c, size, size), dtype=np.uint8)
        before = len(hw.log)
        y, _ = accel.run_conv(conv, x)
        assert np.array_equal(y, conv(x))
        buffer = hw.buffers[-1]
        assert hw.window() == (buffer.device_address, buffer.size)
        written = [(e[1], e[2]) for e in hw.log[before:] if e[0] == "write"]
        start = written.index((rm["CONTROL"].offset, CONTROL_START))
        window_regs = {rm[n].offset for n in ("WINDOW_BASE_LO", "WINDOW_BASE_HI",
                                              "WINDOW_SIZE_LO", "WINDOW_SIZE_HI")}
        assert window_regs <= {o for o, _ in written[:start]}
    assert len(hw.buffers) == 2 and hw.buffers[1].device_address != hw.buffers[0].device_address


def test_layer_outside_the_buffer_refused_before_hardware(fake):
    hw = fake()
    rng = np.random.default_rng(5)
    cfg = AccelConfig()
    conv = make_conv(rng)
    accel = pynq_backend.PynqAccelerator(cfg, "dpegen.bit")
    run = prepare_layer(cfg, conv, rng.integers(0, 256, (1, 5, 6, 6), dtype=np.uint8))
    run.descriptor["output_addr"] = run.dram.memory.size        # past the buffer's end
    before = len(hw.log)
    with pytest.raises(DriverError, match="output .* outside the DMA window"):
        accel.run_layer(run)
    assert not any(e[0] in ("write", "flush") for e in hw.log[before:])

