"""The pooling engine's model (host/compiler/pool_model.py): its DRAM bytes equal the
golden machine's counters of the same pass, for every mode, window and pitch; its cycles
grow with the work. Its cycles against the RTL: sim_tests/test_planner_model.py."""

import numpy as np
import pytest

from hw.config import AccelConfig
from hw.contract import PoolMode
from host.compiler.pool_model import pool_model, pool_pass
from host.golden.machine import _pool_counters, pool_error


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
