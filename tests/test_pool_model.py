"""The pooling engine's model (host/compiler/pool_model.py): its DRAM bytes equal the
golden machine's counters of the same pass, for every mode, window and pitch; its cycles
grow with the work. Its cycles against the RTL: sim_tests/test_planner_model.py."""

import numpy as np
import pytest

from hw.config import AccelConfig
from hw.contract import PoolMode
from host.compiler.pool_model import global_in_one_row, pool_model, pool_pass
from host.golden.machine import _pool_counters, execute_pool, pool_error
from host.golden.quant import float32_bits
from hw.datapath.pool_engine import outputs_per_cycle


def random_passes(rng, n):
    for _ in range(n):
        mode = PoolMode(int(rng.integers(0, 4)))
        c, h, w = (int(v) for v in rng.integers(1, 40, 3))
        if mode in (PoolMode.MAX, PoolMode.AVG):
            k = int(rng.integers(1, min(h, w, 4) + 1))
            s, p = int(rng.integers(1, 3)), int(rng.integers(0, k))
            ceil_mode = mode == PoolMode.MAX and bool(rng.integers(0, 2))
            yield pool_pass(mode, c, h, w, k, s, p, ceil_mode=ceil_mode)
        elif mode == PoolMode.COPY:
            extra = int(rng.integers(0, 5))
            yield pool_pass(mode, c, h, w, in_pitch=w + extra, in_channel_pitch=(h + 1) * (w + extra))
        else:
            yield pool_pass(mode, c, h, w)


def test_bytes_equal_the_golden_machines_counters():
    cfg = AccelConfig()
    checked = 0
    for p in random_passes(np.random.default_rng(4), 300):
        fields = {**p, "input_addr": 0, "output_addr": 0, "multiplier": 0x3F000000}
        if pool_error(cfg, fields, (0, 1 << 40)):
            continue
        m = pool_model(cfg, p)
        golden = _pool_counters(fields)
        assert (m["dram_read_bytes"], m["dram_write_bytes"]) == (golden["dram_read_bytes"],
                                                                  golden["dram_write_bytes"]), p
        checked += 1
    assert checked > 200


@pytest.mark.parametrize("mode", [PoolMode.MAX, PoolMode.AVG, PoolMode.GLOBAL, PoolMode.COPY])
def test_cycles_grow_with_the_work(mode):
    """More channels cost more; wider rows never less (short rows are bound by their reads
    or writes)."""
    cfg = AccelConfig()
    small, large = (pool_model(cfg, pool_pass(mode, c, 16, 16, 3, 2, 1))["cycles"] for c in (4, 8))
    wide = pool_model(cfg, pool_pass(mode, 4, 16, 200, 3, 2, 1))["cycles"]
    assert 0 < small < large and small < wide


def test_a_dense_global_pass_reads_each_channel_as_one_row():
    """The compiler's global average over dense channels that fit a row is one row of
    ``height * width`` per channel: the golden machine gives it the same output and DRAM
    bytes as the row-per-row pass, and the model fewer cycles. Pitched channels, rows wider
    than the engine's and other modes are left alone."""
    cfg = AccelConfig()
    rng = np.random.default_rng(8)
    p = pool_pass(PoolMode.GLOBAL, 40, 7, 7, zero_point=29, multiplier=0.0)
    q = global_in_one_row(p, cfg.line_buffer_depth)
    assert (q["height"], q["width"], q["in_pitch"], q["in_channel_pitch"]) == (1, 49, 49, 49)
    memory = np.zeros(1 << 14, np.uint8)
    memory[:40 * 49] = rng.integers(0, 256, 40 * 49, dtype=np.uint8)
    outputs = []
    for fields in (p, q):
        fields = {**fields, "input_addr": 0, "output_addr": 8192,
                  "multiplier": float32_bits(1 / 49)}
        assert pool_error(cfg, fields, (0, memory.size)) == 0
        out = memory.copy()
        execute_pool(lambda at, n: out[at:at + n], fields)
        outputs.append(out[8192:8192 + 40])
        assert _pool_counters(fields)["dram_read_bytes"] == 40 * 49
    assert np.array_equal(*outputs) and len(np.unique(outputs[0])) > 5
    assert pool_model(cfg, q)["cycles"] < pool_model(cfg, p)["cycles"] / 2
    pitched = pool_pass(PoolMode.GLOBAL, 4, 7, 7, in_pitch=8)
    wide = pool_pass(PoolMode.GLOBAL, 4, 17, 17)
    window = pool_pass(PoolMode.AVG, 4, 7, 7, 7, 1, 0)
    for other in (pitched, wide, window):
        assert global_in_one_row(other, cfg.line_buffer_depth) == other


@pytest.mark.parametrize("kernel, stride, outputs", [(3, 2, 4), (2, 2, 4), (3, 1, 4), (5, 4, 4), (7, 5, 3),
                                                     (9, 8, 2), (16, 1, 2), (16, 3, 1), (17, 1, 1)])
def test_max_pools_reduce_the_outputs_whose_windows_lie_in_two_words(kernel, stride, outputs):
    """Outputs a cycle of a max pool: those of n consecutive windows within 17 lanes (any
    first lane of a 16-lane word, two words read), at most four; averages one."""
    cfg = AccelConfig()
    assert outputs_per_cycle(cfg, PoolMode.MAX, kernel, stride) == outputs
    assert outputs_per_cycle(cfg, PoolMode.AVG, kernel, stride) == 1
