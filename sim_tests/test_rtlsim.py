"""The fast engine (host.runtime.sim.rtlsim: C++ harness, C++ DRAM model) against the cocotb engine.

Both run the same layers in one DRAM image; they must give the same outputs, the same
performance counters, the same START-to-interrupt cycles, the same status and error
codes and the same DRAM contents afterwards. The DRAM model must reproduce cocotbext-axi's
AxiRam with the testbench's latency wrappers cycle for cycle for the counters to agree.
"""

import numpy as np
import pytest

from host.runtime.sim import rtlsim
from host.runtime.driver import DriverError, prepare_layer
from host.runtime.layout import ALIGN
from host.runtime.sim import run_layers
from hw.config import AccelConfig
from hw.contract import ErrorCode
from host.runtime.sim.layers import random_conv

CFG = AccelConfig()

# (C, K, H, W, kernel, stride, padding, tiles or None, activation table)
LAYERS = {
    "3x3": (5, 7, 9, 10, 3, 1, 1, None, False),
    "1x1": (16, 12, 8, 8, 1, 1, 0, None, False),
    "stride2": (8, 6, 15, 13, 3, 2, 1, None, False),
    "tiled_table": (10, 8, 13, 15, 3, 1, 1, {"k": 4, "c": 3, "xo": 4, "yo": 5}, True),
    "fc": (64, 10, 1, 1, 1, 1, 0, None, False),
}


def make_layers():
    convs, xs, runs, base = [], [], [], ALIGN
    for name, (c, k, h, w, kernel, stride, padding, tiles, table) in LAYERS.items():
        nrng = np.random.default_rng(sum(map(ord, name)))
        conv = random_conv(nrng, c, k, kernel, stride, padding, activation_table=table)
        x = nrng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
        run = prepare_layer(CFG, conv, x, tiles, base=base)
        base = -(-(run.dram.top + 64) // ALIGN) * ALIGN
        convs.append(conv), xs.append(x), runs.append(run)
    memory = np.zeros(base, dtype=np.uint8)
    for run in runs:
        memory[run.dram.base:run.dram.top] = run.dram.memory[run.dram.base:run.dram.top]
    layers = [{"run": run} for run in runs]
    # a descriptor the hardware refuses, then the first layer again
    layers.append({"run": runs[0], "writes": runs[0].writes_with(CFG, kernel_size=2)})
    layers.append({"run": runs[0]})
    return convs, xs, runs, layers, memory


def same(fast, slow):
    assert {int(k): v for k, v in fast["identification"].items()} == \
        {int(k): v for k, v in slow["identification"].items()}
    assert len(fast["layers"]) == len(slow["layers"])
    for index, (a, b) in enumerate(zip(fast["layers"], slow["layers"])):
        for key in ("status", "error_code", "irq", "counters", "wall_cycles"):
            assert a[key] == b[key], f"layer {index}: {key} {a[key]} (fast) != {b[key]} (cocotb)"
        assert list(a["output"]) == list(b["output"]), f"layer {index}: outputs differ"
    assert fast["changed"] == slow["changed"]
    assert list(fast["changed_offsets"]) == list(slow["changed_offsets"])


@pytest.mark.parametrize("latency", [0, 50])
def test_engines_agree(latency):
    convs, xs, runs, layers, memory = make_layers()
    fast = rtlsim.run_layers(CFG, layers, latency=latency, memory=memory)
    slow = run_layers(CFG, layers, latency=latency, memory=memory, engine="cocotb")
    same(fast, slow)
    for conv, x, run, layer in zip(convs, xs, runs, fast["layers"]):
        assert layer["error_code"] == 0 and layer["irq"]
        y = np.asarray(layer["output"], dtype=np.uint8).reshape(run.output_shape)
        assert (y == conv(x)[0]).all()
    assert fast["layers"][-2]["error_code"] == ErrorCode.BAD_KERNEL
    assert fast["layers"][-1]["error_code"] == 0


def test_run_conv_on_the_fast_engine():
    from host.runtime.sim import run_conv
    convs, xs, runs, _, _ = make_layers()
    y, counters = run_conv(CFG, convs[3], np.concatenate([xs[3], xs[3]]),
                           LAYERS["tiled_table"][7], latency=20, engine="cpp")
    assert (y == np.concatenate([convs[3](xs[3])] * 2)).all()
    assert counters["dram_read_bytes"] == 2 * runs[3].read_bytes()
    assert counters["wall_cycles"] >= counters["cycles"]


def test_refused_descriptor_is_a_driver_error():
    convs, xs, runs, _, _ = make_layers()
    layers = [{"run": runs[0], "writes": runs[0].writes_with(CFG, stride=3)}]
    layer = rtlsim.run_layers(CFG, layers, latency=20)["layers"][0]
    assert layer["error_code"] == ErrorCode.BAD_STRIDE and layer["irq"]
    from host.runtime.driver import status_error
    assert isinstance(status_error(layer["status"], layer["error_code"]), DriverError)


def test_timeout_is_a_hang(monkeypatch):
    """A layer that does not finish in time comes back without an interrupt (busy); the
    harness stays usable, and run_conv reports it as a DriverError."""
    import host.runtime.sim
    convs, xs, runs, _, _ = make_layers()
    layers = [{"run": runs[4], "timeout_cycles": 30}, {"run": runs[4], "soft_reset_first": True}]
    result = rtlsim.run_layers(CFG, layers, latency=20)
    hung, good = result["layers"]
    assert not hung["irq"] and hung["status"] & 1 and hung["error_code"] == 0
    assert good["irq"] and good["error_code"] == 0
    monkeypatch.setattr(host.runtime.sim, "timeout_cycles", lambda *args, **kwargs: 30)
    with pytest.raises(DriverError, match="did not finish"):
        host.runtime.sim.run_conv(CFG, convs[4], xs[4], latency=20, engine="cpp")


def test_program_on_the_rtl_backend():
    """Program.run(backend="rtl"): a network block through the fast engine equals the
    golden backend, with one counter entry per accelerator layer call and per pooling
    pass."""
    import torch
    from host.tools import models
    from host.compiler.program import compile
    torch.backends.quantized.engine = "qnnpack"
    model_q, x = models.quantized("inception_block", "eager", seed=0, size=12, num_classes=10)
    program = compile(model_q, x, cfg=CFG, cpu_modules=models.depthwise_modules(model_q),
                      progress=False)
    got = program.run(x, backend="rtl")
    counters = [c for c in program.counters if not c.get("pool")]
    pools = [c for c in program.counters if c.get("pool")]
    assert torch.equal(got, program.run(x, backend="golden"))
    calls = sum(p["calls"] for p in program.layers if p["placement"] == "accelerator")
    assert len(counters) == calls > 0
    passes = sum(s.count for s in program.build().segments) - calls
    assert len(pools) == passes > 0 and all(c["cycles"] > 0 for c in pools)
    assert all(c["cycles"] > 0 and c["dram_write_bytes"] > 0 for c in counters)
