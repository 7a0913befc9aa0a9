"""Whole quantized networks on the generated accelerator in Verilator, as an executable:
every conv (depthwise ones included) and Linear runs in simulation, one START per segment
(the host operators run between segments); the network's output and every accelerator
layer's output equal PyTorch's exactly.

The networks are the reference architectures of host.tools.models as published (full width and
depth, 1000 classes: 7x7 stem decomposed, basic blocks with downsample and add_relu,
inverted residuals with ReLU6, Linear as a 1x1 conv) at 64 x 64, on the fast simulation
engine."""

import time

import torch

from host.tools import models
from host.compiler.program import compile, reference_tensors, torch_layer_outputs
from hw.config import AccelConfig

torch.backends.quantized.engine = "qnnpack"


SIZE = 64


def run_on_the_accelerator(name, mode):
    model_q, x = models.quantized(name, mode, seed=0, size=SIZE)
    program = compile(model_q, x, cfg=AccelConfig(), progress=False)
    start = time.perf_counter()
    got = program.run(x, backend="rtl", record=True)
    seconds = time.perf_counter() - start
    exe, report = program.build(reuse=False), program.report
    assert report.starts == report.segments == len(exe.segments)
    assert report.register_accesses <= 16 * report.starts + 8
    # the queue adds a fetch and a trace write per command: little beside the layers' cycles
    cycles = sum(c["cycles"] for c in program.counters)
    assert cycles < report.cycles < cycles * 1.02 + 500 * len(program.counters)
    expected, per_layer = torch_layer_outputs(model_q, program, x)
    assert torch.equal(got, expected)
    assert sorted(program.layer_outputs) == sorted(per_layer)
    for layer, outs in per_layer.items():
        assert len(program.layer_outputs[layer]) == len(outs) == 1
        assert torch.equal(program.layer_outputs[layer][0].int_repr(), outs[0].int_repr()), layer
    # every tensor in DRAM, the fused additions' outputs included
    reference = reference_tensors(model_q, program, x)
    for value, mine in program.tensors.items():
        if value in reference:
            assert torch.equal(mine.int_repr(), reference[value].int_repr()), value
    counters = {c["layer"]: c for c in program.counters if not c.get("pool")}
    pools = [c for c in program.counters if c.get("pool")]
    assert torch.equal(got, program.run(x, backend="golden"))    # the executable with arena reuse
    accelerated = [p["name"] for p in program.layers if p["placement"] == "accelerator"]
    assert list(counters) == accelerated
    for c in pools:     # a pool pass writes its output (a copy its slice) once, no array work
        assert c["cycles"] > 0 and c["array_busy_cycles"] == 0 and c["dram_read_bytes"] > 0
        written = c["C"] * c["H"] * c["W"] if c["pool"] == "COPY" else exe.tensors[c["output"]].size
        assert c["dram_write_bytes"] == written, c
    for c in counters.values():
        assert c["dram_write_bytes"] == exe.tensors[c["output"]].size
        assert 0 < c["array_busy_cycles"] <= c["cycles"]
        assert c["array_busy_cycles"] + c["stall_input_cycles"] <= c["cycles"]
    print(f"{name} ({mode}) at {SIZE}x{SIZE} on the accelerator: {len(counters)} layers, {report.starts} starts, "
          f"{report.cycles} cycles, {seconds:.1f} s")
    return program, counters, pools


def test_resnet18_on_the_accelerator_equals_pytorch():
    program, counters, pools = run_on_the_accelerator("resnet18", "eager")
    assert len(counters) == 21                       # 20 convs and the classifier
    # the stem's input rearranged in 9 copy passes, the max pool and the global average
    assert sorted(c["pool"] for c in pools) == ["COPY"] * 9 + ["GLOBAL", "MAX"]
    fused = [c for c in counters.values() if c.get("add")]
    assert len(fused) == 8                           # every residual addition in a conv
    assert program.report.starts == 1                # the pools and the stem's rearrangement on the chip
    stem = counters["model.conv1.0"]
    out = (SIZE + 2 * 3 - 7) // 2 + 1
    assert stem["source"] == {"C": 3, "kernel": [7, 7]}
    assert (stem["C"], stem["K"], stem["kernel"], stem["stride"], stem["padding"]) == (27, 64, 3, 2, 0)
    assert (stem["H"], stem["W"]) == (2 * (out - 1) + 3,) * 2
    fc = counters["model.head.fc"]
    assert (fc["C"], fc["K"], fc["H"], fc["W"], fc["kernel"]) == (512, 1000, 1, 1, 1)


def test_mobilenet_v2_on_the_accelerator_equals_pytorch():
    program, counters, pools = run_on_the_accelerator("mobilenet_v2", "fx")
    assert len(counters) == 53                       # 52 convs (17 depthwise) and the classifier
    assert all(p["placement"] == "accelerator" for p in program.layers)
    depthwise = [c for c in counters.values() if c["depthwise"]]
    assert len(depthwise) == 17
    assert [c["pool"] for c in pools] == ["GLOBAL"]           # the classifier's average
    # PyTorch's ReLU6 is layout-dependent on qnnpack's channels_last outputs: not folded
    # (after the stem, each expansion and each depthwise conv)
    assert sum(1 for p in program.layers if p["unfolded"]) == 35


def test_small_network_on_the_cocotb_testbench_with_axi_pauses():
    """The same runtime in the cocotb testbench: a ShuffleNetV2-style block at 32 x 32 (its
    convs, pools and channel shuffles in segments between the host's requantizing
    concatenations), random AXI pauses on every channel; the output and every layer's
    output equal PyTorch's."""
    model_q, x = models.quantized("shufflenet_block", "eager", seed=0, size=32)
    program = compile(model_q, x, cfg=AccelConfig(), progress=False)
    got = program.run(x, backend="cocotb", record=True, pause=0.25, seed=3)
    expected, per_layer = torch_layer_outputs(model_q, program, x)
    assert torch.equal(got, expected)
    for layer, outs in per_layer.items():
        assert torch.equal(program.layer_outputs[layer][0].int_repr(), outs[0].int_repr()), layer
    report = program.report
    assert report.starts == len(program.build(reuse=False).segments) > 1
    assert all(c["cycles"] > 0 for c in program.counters)
    # 10 convs; the stem's max pool, 2 channel shuffles of 2 copy passes, the global average
    assert sorted(c.get("pool", "conv") for c in program.counters) == ["COPY"] * 4 + ["GLOBAL", "MAX"] + ["conv"] * 10
