"""A whole quantized CNN on the generated accelerator in Verilator: every conv runs in
simulation, everything else on the CPU; the result equals PyTorch's exactly."""

import time

import torch

from host.program import compile
from hw.config import AccelConfig
from tests.test_frontend import inputs, reference, small_cnn


def test_small_cnn_on_the_accelerator_equals_pytorch():
    model_q = small_cnn("relu6")
    x = inputs(1, (1, 3, 32, 32), seed=21)[0]
    program = compile(model_q, x, cfg=AccelConfig())
    start = time.perf_counter()
    got = program.run(x, backend="sim")
    seconds = time.perf_counter() - start
    counters = program.counters
    assert torch.equal(got, reference(model_q, x))
    assert torch.equal(got, program.run(x, backend="golden"))
    assert [c["layer"] for c in counters] == ["conv1", "conv2", "conv3"]
    for c, (ch, k, h, stride) in zip(counters, [(3, 16, 32, 1), (16, 32, 32, 2), (32, 32, 16, 1)]):
        assert (c["C"], c["K"], c["H"], c["W"], c["stride"]) == (ch, k, h, h, stride)
        assert c["dram_write_bytes"] == k * (h // stride) ** 2
        assert 0 < c["array_busy_cycles"] <= c["cycles"]
    print(f"small CNN on the accelerator: {seconds:.1f} s, "
          f"{sum(c['cycles'] for c in counters)} cycles")
