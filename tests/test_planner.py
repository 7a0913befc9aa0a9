"""The tiling planner: exact byte model, buffer bounds, search vs exhaustive, errors."""

import itertools

import pytest

from host.golden import schedule
from host.compiler.planner import ConvShape, candidates, descriptor_for, exhaustive_plan, layer_bytes, model, plan
from hw.config import AccelConfig

SMALL = AccelConfig(kp=2, yp=2, line_buffer_depth=8, streaming_buffer_depth=256,
                    stationary_buffer_depth=16, output_buffer_depth=64)

LAYERS = [ConvShape(8, 7, 6, 6), ConvShape(5, 9, 9, 7, 3, 2, 1), ConvShape(12, 4, 5, 5, 1, 1, 0),
          ConvShape(3, 5, 8, 8, 3, 1, 0), ConvShape(6, 6, 7, 7, 1, 2, 0)]


@pytest.mark.parametrize("layer", LAYERS + [ConvShape(64, 64, 28, 28), ConvShape(64, 256, 14, 14, 1, 1, 0)])
@pytest.mark.parametrize("cfg", [AccelConfig(), SMALL, AccelConfig(kp=8, yp=8)])
def test_plan_never_exceeds_a_buffer(cfg, layer):
    try:
        p = plan(cfg, layer)
    except schedule.BufferOverflow:
        pytest.skip("layer does not fit this configuration")
    desc = descriptor_for(layer, p.tiles)
    schedule.check_fits(cfg, desc)
    assert p.buffers == schedule.buffer_needs(cfg, desc)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("cfg", [AccelConfig(), SMALL])
def test_plan_equals_exhaustive_search(cfg, layer):
    p, e = plan(cfg, layer), exhaustive_plan(cfg, layer)
    assert (p.cycles, p.dram_read_bytes + p.dram_write_bytes) == \
        (e.cycles, e.dram_read_bytes + e.dram_write_bytes)
    # exhaustive really is exhaustive: no integer tile that fits is modelled faster
    best = None
    for tk, tc, txo, tyo in itertools.product(range(1, layer.kernels + 1), range(1, layer.channels + 1),
                                              range(1, layer.out_height + 1), range(1, layer.out_width + 1)):
        desc = descriptor_for(layer, {"k": tk, "c": tc, "xo": txo, "yo": tyo})
        try:
            schedule.check_fits(cfg, desc)
        except schedule.BufferOverflow:
            continue
        c = model(cfg, desc)["cycles"]
        best = c if best is None else min(best, c)
    assert e.cycles == best


@pytest.mark.parametrize("layer", LAYERS + [ConvShape(20, 9, 13, 11, 3, 2, 1)])
def test_model_bytes_are_the_tilers_transfers(layer):
    vals = candidates(SMALL, layer)
    for tiles in itertools.islice(itertools.product(vals["k"], vals["c"], vals["xo"], vals["yo"]), 0, None, 7):
        desc = descriptor_for(layer, dict(zip(("k", "c", "xo", "yo"), tiles)))
        m = model(AccelConfig(), desc)
        assert (m["dram_read_bytes"], m["dram_write_bytes"]) == layer_bytes(desc)
        assert m["cycles"] >= m["array_busy_cycles"]


def test_overflow_names_the_buffer():
    # Every valid AccelConfig holds the smallest tile; a configuration-like object with a
    # line buffer below that exercises the error path.
    from types import SimpleNamespace
    cfg = SimpleNamespace(kp=2, yp=2, line_buffer_depth=2, streaming_buffer_depth=1 << 16,
                          stationary_buffer_depth=4096, output_buffer_depth=4096, macs_per_cycle=36)
    with pytest.raises(schedule.BufferOverflow, match=r"line_buffer_depth >= 3 activations per row"):
        plan(cfg, ConvShape(4, 4, 12, 12, 3, 1, 0))


def test_default_tiles_uses_the_planner():
    import numpy as np
    from host.runtime.driver import default_tiles
    from host.golden.quant import QuantConv
    conv = QuantConv(weight=np.ones((16, 24, 3, 3), np.int8), bias_q=np.zeros(16), multiplier=0.01,
                     input_zero_point=3, output_zero_point=0, stride=1, padding=1)
    tiles = default_tiles(AccelConfig(), conv, 20, 20)
    assert tiles == plan(AccelConfig(), ConvShape.from_conv(conv, 20, 20)).tiles
    assert set(tiles) == {"k", "c", "xo", "yo"}
