"""Checks of a simulated accelerator run, shared by the end-to-end tests: outputs, counters
and the DRAM bytes a run may change."""

import numpy as np

from hw.contract import ErrorCode

__all__ = ["check_run", "check_guard", "check_outputs_only", "run_checked_batch"]


def check_run(cfg, run, layer, expected):
    """The layer ended with its interrupt and no error, its output equals ``expected`` and its
    counters add up (DRAM bytes as its transfers, busy and stall cycles within its cycles)."""
    assert layer["error_code"] == 0, ErrorCode(layer["error_code"]).name
    assert layer["irq"], "no interrupt"
    got = np.asarray(layer["output"], dtype=np.uint8).reshape(expected.shape)
    bad = int((got != expected).sum())
    assert bad == 0, f"{bad} of {expected.size} outputs differ"
    c = layer["counters"]
    assert c["dram_read_bytes"] == run.read_bytes()
    assert c["dram_write_bytes"] == expected.size
    assert c["array_busy_cycles"] <= c["cycles"]
    assert c["stall_input_cycles"] + c["stall_weights_cycles"] + c["stall_output_cycles"] \
        + c["array_busy_cycles"] <= c["cycles"]
    return c


def check_guard(result, runs):
    """Bytes that changed in DRAM all lie inside the layers' output tensors."""
    regions = [(r.output_addr, r.output_addr + int(np.prod(r.output_shape))) for r in runs]
    if result["changed"] is None:
        return
    for offset in result["changed_offsets"]:
        assert any(lo <= offset < hi for lo, hi in regions), f"byte {offset:#x} outside the output changed"
    lo, hi, _ = result["changed"]
    assert any(a <= lo and hi < b for a, b in regions), f"changes span [{lo:#x}, {hi:#x}]"


def check_outputs_only(result, runs):
    """What changed in DRAM lies in the layers' outputs: the first and last changed bytes,
    the changed bytes the simulation lists, and no more bytes than the outputs hold."""
    regions = [(r.output_addr, r.output_addr + int(np.prod(r.output_shape))) for r in runs]
    if result["changed"] is None:
        return
    lo, hi, count = result["changed"]
    for offset in [lo, hi, *result["changed_offsets"]]:
        assert any(a <= offset < b for a, b in regions), f"byte {offset:#x} outside the outputs changed"
    assert count <= sum(b - a for a, b in regions)


def run_checked_batch(cfg, layers, **options):
    """Run ``(conv, x, expected, tiles)`` layers in one simulation of ``cfg``; each equals PyTorch and
    the golden model, and nothing outside the outputs changes."""
    from host.runtime.sim import prepare_batch, run_layers
    runs, memory = prepare_batch(cfg, [(conv, x, tiles) for conv, x, _, tiles in layers])
    result = run_layers(cfg, [{"run": run} for run in runs], memory=memory, **options)
    check_outputs_only(result, runs)
    for (conv, x, expected, _), run, layer in zip(layers, runs, result["layers"]):
        assert np.array_equal(conv(x), expected), "golden model differs from PyTorch"
        check_run(cfg, run, layer, expected[0])
    return result
