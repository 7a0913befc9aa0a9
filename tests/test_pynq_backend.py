"""PYNQ backend against the fake board of ``host.runtime.pynq_fake``: a ``pynq`` module
that records every register and buffer access, with the golden accelerator model behind
the registers (a START or START_QUEUE runs at once on the buffers' bytes)."""

import sys

import numpy as np
import pytest

from host.runtime import pynq_backend
from host.runtime.driver import (DriverError, address_registers, prepare_layer, rebase_writes,
                                 register_writes)
from host.runtime.pynq_fake import BUFFER_BASE as PHYS, FakeBoard
from host.golden.quant import QuantConv
from hw.config import AccelConfig
from hw.contract import CONTROL_START, ErrorCode, register_map


@pytest.fixture
def fake(monkeypatch):
    def install(bitstream_cfg=AccelConfig(), **kw):
        board = FakeBoard(bitstream_cfg, **kw)
        monkeypatch.setitem(sys.modules, "pynq", board.module())
        monkeypatch.setattr(pynq_backend, "_OPEN", {})
        return board
    return install


def make_conv(rng, c=5, k=7, kernel=3, stride=1, padding=1):
    weight = rng.integers(-128, 128, size=(k, c, kernel, kernel)).astype(np.int8)
    return QuantConv(weight=weight, bias_q=rng.integers(-5000, 5000, size=k),
                     multiplier=np.float32(1.0 / (np.sqrt(c * kernel * kernel) * 128)),
                     input_zero_point=113, output_zero_point=100, lo=3, hi=250,
                     table=rng.permutation(256).astype(np.uint8), stride=stride, padding=padding)


def writes_of(hw):
    return hw.writes()


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
    for name in ("input_addr", "weight_addr", "params_addr", "output_addr", "residual_addr"):
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
    assert flushes[0][1:] == (hw.buffers[0].device_address, hw.buffers[0].nbytes)
    image = hw.buffers[0].view(np.ndarray)[:run.dram.memory.size].copy()
    out = slice(run.output_addr, run.output_addr + y.size)
    image[out] = run.dram.memory[out]                    # all but the output, as written
    assert np.array_equal(image, run.dram.memory)
    start = hw.log.index(("write", rm["CONTROL"].offset, CONTROL_START))
    after = hw.log[start + 1:]
    if with_interrupt:
        assert after[0] == ("wait",)
    else:
        assert ("interrupt", "dpegen_0/irq") not in hw.log
        assert after[0] == ("read", rm["STATUS"].offset)
    assert kinds.index("invalidate") > start
    assert np.array_equal(y, conv(x))
    assert counters["dram_read_bytes"] == run.read_bytes()    # the golden model's transfers
    assert "wall_seconds" in counters


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 1), (3, 2, 1), (3, 1, 0), (1, 1, 0), (1, 2, 0)])
def test_output_matches_golden(fake, kernel, stride, padding):
    fake()
    rng = np.random.default_rng(kernel * 10 + stride + padding)
    conv = make_conv(rng, c=6, k=9, kernel=kernel, stride=stride, padding=padding)
    x = rng.integers(0, 256, size=(2, 6, 13, 10), dtype=np.uint8)
    y, counters = pynq_backend.run_conv(AccelConfig(), conv, x, bitfile="dpegen.bit")
    assert y.dtype == np.uint8 and np.array_equal(y, conv(x))
    run = prepare_layer(AccelConfig(), conv, x[:1])
    assert counters["dram_read_bytes"] == 2 * run.read_bytes()      # summed over the batch of 2


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
    for name in ("input_addr", "weight_addr", "params_addr", "output_addr", "residual_addr"):
        upper = name.upper()
        value = by_offset[rm[f"DESC_{upper}_LO"].offset] | by_offset[rm[f"DESC_{upper}_HI"].offset] << 32
        assert value == run.descriptor[name] + offset
    table = by_offset[rm["TABLE_ADDR_LO"].offset] | by_offset[rm["TABLE_ADDR_HI"].offset] << 32
    assert table == run.table_addr + offset
    addr_offsets = {o for pair in address_registers(cfg).values() for o in pair}
    assert len(addr_offsets) == 14              # 5 descriptor addresses, the table, the window
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

