"""The network executable (host/runtime/executable.py, built by host/compiler/build.py):
its file (round trip, damaged and truncated files refused), its arena (tensors alive at the
same time never share bytes, and it is smaller than the tensors), the runtime on the golden
model and on the PYNQ backend over the fake board (resident image, per-frame traffic and
register accesses, errors), and the runtime's independence from torch and the compiler."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hw.config import AccelConfig
from hw.contract import COMMAND_BYTES, CONTROL_START_QUEUE, ErrorCode, register_map
from host.compiler.program import compile
from host.runtime.driver import DriverError
from host.runtime.executable import Executable, ExecutableError, HostOp, Segment
from host.runtime.pynq_fake import FakeBoard
from host.tools.models import quantized

torch.backends.quantized.engine = "qnnpack"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def resnet():
    """ResNet-18 at 32 x 32 (eager), its program and executable."""
    model_q, x = quantized("resnet18", "eager", seed=0, size=32)
    program = compile(model_q, x)
    return model_q, x, program, program.build()


@pytest.fixture
def board(monkeypatch):
    def install(cfg=AccelConfig(), **kw):
        fake = FakeBoard(cfg, **kw)
        monkeypatch.setitem(sys.modules, "pynq", fake.module())
        return fake
    return install


def test_golden_backend_equals_pytorch(resnet):
    model_q, x, program, exe = resnet
    y = exe.run(x.numpy(), backend="golden")
    assert np.array_equal(y, model_q(x).numpy())
    assert len(exe.segments) == exe.report.starts == exe.report.segments
    assert exe.report.register_accesses <= 16 * exe.report.starts + 8


def test_file_round_trip(resnet, tmp_path):
    model_q, x, program, exe = resnet
    path = exe.save(tmp_path / "net.dpeg")
    loaded = Executable.load(path)
    assert loaded.cfg == exe.cfg and np.array_equal(loaded.image, exe.image)
    assert loaded.tensors == exe.tensors and loaded.inputs == exe.inputs and loaded.outputs == exe.outputs
    assert [type(s) for s in loaded.steps] == [type(s) for s in exe.steps]
    for a, b in zip(loaded.steps, exe.steps):
        if isinstance(a, Segment):
            assert (a.list_addr, a.count, a.trace_addr, a.commands) == (b.list_addr, b.count, b.trace_addr, b.commands)
        else:
            assert (a.kind, a.inputs, a.outputs) == (b.kind, b.inputs, b.outputs)
    assert np.array_equal(loaded.run(x.numpy()), model_q(x).numpy())


def test_damaged_files_are_refused(resnet, tmp_path):
    exe = resnet[3]
    raw = bytearray(exe.save(tmp_path / "net.dpeg").read_bytes())
    cases = {"truncated": raw[:-100], "one byte of a weight flipped": raw[:-5000] + bytes([raw[-5000] ^ 1]) + raw[-4999:],
             "the header edited": raw.replace(b'"kp":3', b'"kp":4', 1), "empty": b"",
             "not an executable": b"\x7fELF" + bytes(100)}
    assert cases["the header edited"] != raw
    for what, data in cases.items():
        path = tmp_path / "bad.dpeg"
        path.write_bytes(bytes(data))
        with pytest.raises(ExecutableError, match="damaged|not a dpegen executable"):
            Executable.load(path)


def test_arena_reuses_memory_and_never_overlaps_live_tensors(resnet):
    exe = resnet[3]
    # the frame's events in order (each command of a segment one event): what each reads
    # and writes; a storage lives from its first event to its last
    events = []
    for step in exe.steps:
        if isinstance(step, Segment):
            events += [[c["input"], c["output"]] + ([c["residual"]] if c.get("residual") else [])
                       for c in step.commands]
        else:
            events.append(step.inputs + step.outputs)
    events.append(list(exe.outputs))                            # read after the last step
    lo, hi = exe.arena[0], exe.arena[0] + exe.arena[1]
    static = [t for t in exe.tensors.values() if 0 <= t.offset < lo]
    assert all(t.offset + t.size <= lo for t in static)     # prefilled padded inputs, in the image
    alive, span = {}, {}
    for i, names in enumerate(events):
        for name in names:
            t = exe.tensors[name]
            if not lo <= t.offset:
                continue
            first, last = alive.get(t.storage, (i, i))
            alive[t.storage] = (min(first, i), max(last, i))
            root = exe.tensors[t.storage]
            span[t.storage] = (root.offset, root.offset + root.size)
    storages = sorted(span)
    shared = 0
    for i, a in enumerate(storages):
        for b in storages[i + 1:]:
            (a0, a1), (b0, b1) = span[a], span[b]
            if a0 < b1 and b0 < a1:
                shared += 1
                (alo, ahi), (blo, bhi) = alive[a], alive[b]
                assert ahi < blo or bhi < alo, f"{a} and {b} share bytes while both alive"
    assert shared > 0
    # the arena holds the largest set of tensors alive at once, and not much more
    peak = max(sum(span[n][1] - span[n][0] for n in alive if alive[n][0] <= i <= alive[n][1])
               for i in range(len(events)))
    assert peak <= exe.arena[1] <= 1.5 * peak + 4096 and exe.arena[1] < exe.tensor_bytes
    assert all(t.offset + t.size <= hi for t in exe.tensors.values() if t.offset >= lo)


def test_saved_executable_on_the_board(resnet, board, tmp_path):
    """Frames of a saved executable through the PYNQ backend: the image goes to the board
    once, a frame writes the input and the host operators' outputs only, at most 16
    register accesses per start, one START_QUEUE per segment."""
    model_q, x, program, exe = resnet
    path = exe.save(tmp_path / "net.dpeg")
    fake = board()
    loaded = Executable.load(path)
    session = loaded.session("pynq", bitfile="dpegen.bit")
    expected = model_q(x).numpy()
    y, _ = session.run(x.numpy())                  # the image is flushed before the first start
    assert np.array_equal(y, expected)
    before = len(fake.log)
    y, _ = session.run(x.numpy())
    assert np.array_equal(y, expected)
    report = session.report
    rm = register_map()
    starts = [e for e in fake.log[before:] if e[:3] == ("write", rm["CONTROL"].offset, CONTROL_START_QUEUE)]
    assert len(starts) == report.starts == len(loaded.segments)
    assert report.register_accesses <= 16 * report.starts
    host_out = sum(loaded.tensors[n].size for op in loaded.host_ops for n in op.outputs
                   if loaded.tensors[n].offset >= 0)
    assert report.bytes_written == host_out                # the quantized input is a host op's output
    # no weight, parameter or command byte is written again: flushed ranges lie in the arena
    arena = (fake.buffers[0].device_address + loaded.arena[0],
             fake.buffers[0].device_address + loaded.arena[0] + loaded.arena[1])
    flushes = [e for e in fake.log[before:] if e[0] == "flush"]
    assert flushes and all(arena[0] <= a and a + n <= arena[1] for _, a, n in flushes)
    y2, _ = session.run(x.numpy() * 0.5)
    assert np.array_equal(y2, model_q(x * 0.5).numpy())


def test_another_configuration_is_refused_before_any_write(resnet, board):
    exe = resnet[3]
    fake = board(AccelConfig(kp=4))
    with pytest.raises((ExecutableError, DriverError), match="kp is 4 in the bitstream, 3 in the configuration"):
        exe.run(resnet[1].numpy(), backend="pynq", bitfile="dpegen.bit")
    assert fake.writes() == [] and not any(e[0] == "flush" for e in fake.log)


def test_accelerator_error_names_the_command(resnet, board):
    exe = resnet[3]
    board(fail_with=ErrorCode.DMA_WRITE_ERROR)
    first = next(s for s in exe.steps if isinstance(s, Segment))
    with pytest.raises(DriverError, match=f"DMA_WRITE_ERROR in command 0 of the segment \\({first.commands[0]['layer']}"):
        exe.run(resnet[1].numpy(), backend="pynq", bitfile="dpegen.bit")


def test_wrong_inputs_are_refused(resnet):
    exe = resnet[3]
    with pytest.raises(ValueError, match="shape"):
        exe.run(np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="takes 1 input"):
        exe.run()
    with pytest.raises(ValueError, match="backend"):
        exe.run(resnet[1].numpy(), backend="nope")


def test_commands_in_the_image_decode_to_the_segments(resnet):
    """Every segment's list holds its commands' records, addresses inside the image: the
    layers' outputs in the arena, the pool passes' inputs and outputs in the image."""
    from hw.contract import CommandOp, CommandRecord, unpack_record
    from host.runtime.driver import command_fields
    exe = resnet[3]
    ops = []
    for seg in exe.segments:
        for i in range(seg.count):
            at = seg.list_addr + i * COMMAND_BYTES
            raw = exe.image[at:at + COMMAND_BYTES]
            desc, table, zp, op = command_fields(raw)
            ops.append(op)
            info = seg.commands[i]
            if op == CommandOp.POOL:
                fields = unpack_record(CommandRecord, raw)
                assert "pool" in info and fields["channels"] == info["C"]
                assert all(0 <= fields[f] < exe.image_size for f in ("input_addr", "output_addr"))
                continue
            assert op == CommandOp.CONV and 0 <= table < exe.image_size and "pool" not in info
            assert exe.arena[0] <= desc["output_addr"] < exe.arena[0] + exe.arena[1]
            assert (desc["channels"], desc["kernels"]) == (info["C"], info["K"])
    assert ops.count(CommandOp.CONV) == 21 and ops.count(CommandOp.POOL) == 10


def test_runtime_needs_neither_torch_nor_the_compiler(resnet, tmp_path):
    """A saved executable runs on the golden model in a process that imports no torch and
    no planner (torch imports are blocked)."""
    path = resnet[3].save(tmp_path / "net.dpeg")
    np.save(tmp_path / "x.npy", resnet[1].numpy())
    np.save(tmp_path / "y.npy", resnet[0](resnet[1]).numpy())
    script = f"""
import sys, numpy as np
sys.modules["torch"] = None                    # any import of torch fails
from host.runtime.executable import Executable
exe = Executable.load({str(path)!r})
y = exe.run(np.load({str(tmp_path / 'x.npy')!r}))
assert np.array_equal(y, np.load({str(tmp_path / 'y.npy')!r}))
assert not [m for m in sys.modules if m.startswith("host.compiler")], "the compiler was imported"
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def test_segments_and_host_operators(resnet):
    """ResNet-18 at 32 x 32: its 8 residual additions fused into the convs producing them,
    the stem's input rearrangement (9 copy passes) and the max pool on the chip, in one
    segment; quantize, the final average (1 x 1: PyTorch's generic kernel) and
    dequantize on the host."""
    exe = resnet[3]
    kinds = [s.kind for s in exe.steps if isinstance(s, HostOp)]
    assert kinds == ["quantize", "adaptive_avg_pool2d", "dequantize"]
    assert "generic adaptive average" in exe.info["host_reasons"]["model.head.pool"]
    assert len(exe.info["fused"]) == 8 and set(exe.info["host_reasons"]) == {"quant", "model.head.pool", "dequant"}
    fused = [c for seg in exe.segments for c in seg.commands if c.get("add")]
    assert len(fused) == 8 and all(c["residual"] for c in fused)
    assert not exe.needs_torch
    assert sum(s.count for s in exe.segments) == 31
    assert len(exe.segments) == 2                   # before and after the host's average
