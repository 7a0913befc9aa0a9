"""Simulation backend: runs layers on the generated accelerator in Verilator.

``run_conv(cfg, conv, x_u8)`` builds the :class:`hw.top.Accelerator` for ``cfg`` (cached
by Verilog hash), loads a DRAM image into an AXI4 RAM model, programs the registers over
AXI4-Lite exactly as the board driver does, waits for the interrupt and returns the
output and the performance counters. Usable from plain Python and from tests.
"""

import tempfile
from pathlib import Path

import numpy as np

from hw.config import CHANNEL_BLOCK, AccelConfig

from host.runtime.sim import runner
from host.runtime.driver import DriverError, prepare_layer, status_error
from host.golden.quant import QuantConv, float32_bits

__all__ = ["run_conv", "run_pool", "run_layers", "prepare_batch", "accelerator_verilog", "timeout_cycles",
           "run_executable_cocotb"]

_VERILOG = {}


def accelerator_verilog(cfg: AccelConfig):
    """The Accelerator's Verilog and its module name, converted once per configuration."""
    if cfg not in _VERILOG:
        from hw.top import Accelerator
        text = runner.to_verilog(Accelerator(cfg), "dpegen_accel")
        _VERILOG[cfg] = text
    return _VERILOG[cfg]


def timeout_cycles(cfg, desc, latency=50, pause=0.0):
    """Generous bound on a layer's cycles, past which the testbench calls it hung.

    The sum of: 8x the layer's MAC-bound time; per step (channel tile of an output tile)
    64 cycles of pipeline turn-around; per DMA transfer twice the time a transfer holds
    one of the engine's outstanding slots (``latency`` + 16 cycles, ``max_outstanding_reads``
    slots) plus two cycles per bus beat; twice the weight words the stationary buffer
    takes at one per cycle; 200,000 cycles of slack. Random AXI pauses of
    probability ``pause`` stretch it by ``1 / (1 - pause)^2``. Tilings one or two output
    columns wide read one short transfer per input row and are bound by DRAM latency, not
    by MACs (a 32x9 layer with 30 channels and such tiles takes about a million cycles).
    """
    from host.golden import tiling
    d = desc
    R, S, P = d["kernel_size"], d["stride"], d["padding"]
    xo = tiling.output_size(d["height"], R, S, P)
    yo = tiling.output_size(d["width"], R, S, P)
    macs = d["channels"] * d["kernels"] * R * R * xo * yo
    tiles_xy = tiling.ceil_div(xo, d["tile_xo"]) * tiling.ceil_div(yo, d["tile_yo"])
    steps = tiling.ceil_div(d["kernels"], d["tile_k"]) * tiles_xy * tiling.ceil_div(d["channels"], d["tile_c"])
    bus = cfg.axi_data_width // 8
    slot = 2 * (latency + 16) / cfg.max_outstanding_reads
    _, _, count, beats = tiling.transfer_summary(desc, bus)
    dma = slot * count + 2 * beats
    # the stationary buffer takes one beat per cycle, and every output tile loads all the
    # layer's weights: the KP x 9 weights of one kernel group and unit (a 3x3 channel, a
    # 1x1 channel block) per beat
    units = tiling.ceil_div(d["channels"], CHANNEL_BLOCK) if R == 1 else d["channels"]
    weight_words = tiles_xy * tiling.ceil_div(d["kernels"], cfg.kp) * units
    cycles = 8 * macs / cfg.macs_per_cycle + 64 * steps + dma + 2 * weight_words
    return int(cycles / (1.0 - min(pause, 0.9)) ** 2) + 200_000


def run_layers(cfg: AccelConfig, layers, *, latency=0, pause=0.0, seed=1, waves=False,
               memory=None, engine=None, dump=False):
    """Run prepared layers (``LayerRun`` plus per-layer options) in one simulation.

    ``layers``: dicts ``{"run": LayerRun, "fault": None or {...}, "soft_reset_first": bool,
    "writes": optional override}``, all sharing one DRAM image: ``memory`` (u8 array), by
    default the first run's. A dict with ``"queue": (list address, length, trace
    address)`` starts a command queue after its ``writes`` instead of a single layer
    (its ``run`` may be None; give ``"timeout_cycles"``). Returns the cocotb side's result
    dict (identification, per-layer status/counters/output/``queue_index``, and the DRAM
    bytes that changed; ``dump=True``: also ``memory``, the whole DRAM afterwards).

    ``engine``: "cpp" (:mod:`host.runtime.sim.rtlsim`, no Python per cycle, identical results) or
    "cocotb"; by default "cpp" unless random pauses, fault injection or waves are asked for
    (see :func:`host.runtime.sim.rtlsim.choose_engine`).
    """
    from host.runtime.sim import rtlsim
    if rtlsim.choose_engine(engine, pause=pause, waves=waves, layers=layers) == "cpp":
        return rtlsim.run_layers(cfg, layers, latency=latency, pause=pause, waves=waves,
                                 memory=memory, dump=dump)
    first = layers[0]["run"]
    if memory is None and first is None:
        raise ValueError("give the DRAM image (memory) when the first layer has no run")
    with tempfile.TemporaryDirectory(prefix="dpegen-sim-") as tmp:
        image = Path(tmp) / "image.npz"
        np.savez(image, memory=first.dram.memory if memory is None else np.asarray(memory, np.uint8))
        spec = []
        for layer in layers:
            run = layer["run"]
            spec.append({"writes": layer.get("writes", run.writes if run else []),
                         "output": [run.output_addr, int(np.prod(run.output_shape))] if run else None,
                         "timeout_cycles": layer.get("timeout_cycles")
                         or timeout_cycles(cfg, run.descriptor, latency, pause),
                         "queue": layer.get("queue"),
                         "fault": layer.get("fault"),
                         "soft_reset_first": layer.get("soft_reset_first", False)})
        result = runner.run(verilog_text=accelerator_verilog(cfg), name="dpegen_accel",
                            test_module="host.runtime.sim.cocotb_backend", testcase="run_layers",
                            result=True, waves=waves,
                            params={"image": str(image), "layers": spec, "latency": latency,
                                    "pause": pause, "seed": seed, "dump": dump})
    if dump:
        result["memory"] = np.asarray(result["memory"], dtype=np.uint8)
    return result


def run_executable_cocotb(exe, inputs, *, record=False, latency=50, pause=0.0, seed=1, frames=1):
    """Run ``frames`` frames of ``exe`` on ``inputs`` in the cocotb testbench (the same
    runtime as every backend, in the simulator's process; DRAM ``latency``, random AXI
    pauses of probability ``pause``): ``(outputs, FrameReport of the last frame,
    recorded tensors or None)``."""
    from host.runtime.executable import FrameReport
    with tempfile.TemporaryDirectory(prefix="dpegen-exe-") as tmp:
        tmp = Path(tmp)
        exe.save(tmp / "network.dpeg")
        np.savez(tmp / "inputs.npz", **{f"input{i}": np.asarray(x.detach().numpy() if hasattr(x, "detach") else x)
                                        for i, x in enumerate(inputs)})
        result = runner.run(verilog_text=accelerator_verilog(exe.cfg), name="dpegen_accel",
                            test_module="host.runtime.sim.cocotb_backend", testcase="run_executable",
                            result=True, params={"executable": str(tmp / "network.dpeg"),
                                                 "inputs": str(tmp / "inputs.npz"),
                                                 "outputs": str(tmp / "outputs.npz"), "record": record,
                                                 "latency": latency, "pause": pause, "seed": seed,
                                                 "frames": frames})
        data = np.load(tmp / "outputs.npz")
        outputs = tuple(data[f"output{i}"] for i in range(result["outputs"]))
        recorded = {k[len("tensor:"):]: data[k] for k in data.files if k.startswith("tensor:")} if record else None
    report = FrameReport(**result["report"])
    return (outputs[0] if len(outputs) == 1 else outputs), report, recorded


def prepare_batch(cfg: AccelConfig, layers, residuals=None):
    """Lay several layers out one after another in one DRAM image, for :func:`run_layers`.

    ``layers``: ``(conv, x_u8, tiles)`` triples (``x_u8`` (1, C, H, W), ``tiles`` as for
    :func:`run_conv`); ``residuals``: per layer a fused addition or None (see
    :func:`host.runtime.driver.prepare_layer`). Returns ``(runs, memory)``: a ``LayerRun``
    per layer, each at its own 4 KiB-aligned base, and the u8 image holding them all (pass
    it as ``memory``).
    """
    from host.runtime.layout import ALIGN
    runs, base = [], ALIGN
    residuals = residuals or [None] * len(layers)
    for (conv, x_u8, tiles), residual in zip(layers, residuals):
        run = prepare_layer(cfg, conv, x_u8, tiles, base=base, residual=residual)
        runs.append(run)
        base = -(-(run.dram.top + 64) // ALIGN) * ALIGN
    memory = np.zeros(base, dtype=np.uint8)
    for run in runs:
        memory[run.dram.base:run.dram.top] = run.dram.memory[run.dram.base:run.dram.top]
    return runs, memory


def run_conv(cfg: AccelConfig, conv: QuantConv, x_u8, tiles=None, *, latency=50, pause=0.0,
             seed=1, waves=False, engine=None, residual=None):
    """Run ``conv`` on ``x_u8`` (N, C, H, W) u8 in simulation: ``(y_u8, counters)``.

    ``tiles``: ``{"k", "c", "xo", "yo"}`` L3 tile sizes (default: the whole layer;
    ``host.compiler.planner.layer_tiles`` plans better ones). A grouped
    layer other than a 3x3 depthwise one runs as one layer per group. ``residual``: a
    fused addition (as :func:`host.runtime.driver.prepare_layer` takes it; one image).
    ``latency``: DRAM read latency in cycles; ``pause``: probability of a random AXI
    pause per channel and cycle. ``counters`` sums the performance counters over the
    batch and adds ``wall_cycles`` (START to interrupt, as the testbench saw it).
    """
    x_u8 = np.asarray(x_u8)
    if x_u8.ndim != 4:
        raise ValueError(f"input must be (N, C, H, W), got shape {x_u8.shape}")
    from host.runtime.driver import runs_depthwise
    if residual is not None and (x_u8.shape[0] != 1 or conv.groups != 1 and not runs_depthwise(conv)):
        raise ValueError("a fused addition runs on one image of a layer the accelerator runs whole")
    if conv.groups != 1 and not runs_depthwise(conv):
        # one layer per group, on the group's slice of channels (a pointer offset in DRAM)
        c = conv.in_channels // conv.groups
        parts = [run_conv(cfg, conv.group(g), x_u8[:, g * c:(g + 1) * c], tiles, latency=latency,
                          pause=pause, seed=seed, waves=waves, engine=engine)
                 for g in range(conv.groups)]
        totals = {name: sum(counters[name] for _, counters in parts) for name in parts[0][1]}
        return np.concatenate([y for y, _ in parts], axis=1), totals
    outputs, totals = [], {}
    for image in x_u8:
        run = prepare_layer(cfg, conv, image[None], tiles, residual=residual)
        result = run_layers(cfg, [{"run": run}], latency=latency, pause=pause, seed=seed, waves=waves,
                            engine=engine)
        layer = result["layers"][0]
        error = status_error(layer["status"], layer["error_code"])
        if error:
            raise error
        if not layer["irq"]:
            raise DriverError(f"layer did not finish within "
                              f"{timeout_cycles(cfg, run.descriptor, latency, pause)} cycles")
        outputs.append(np.asarray(layer["output"], dtype=np.uint8).reshape(run.output_shape))
        for name, value in {**layer["counters"], "wall_cycles": layer["wall_cycles"]}.items():
            totals[name] = totals.get(name, 0) + value
    return np.stack(outputs), totals


def run_pool(cfg: AccelConfig, p, x_u8, *, latency=50, pause=0.0, seed=1, engine=None):
    """Run one pooling-engine pass in simulation, as a one-command queue: ``p`` its
    :class:`hw.contract.PoolDescriptor` fields (``mode`` a :class:`PoolMode`, addresses
    left out), ``x_u8`` the input bytes (``in_channel_pitch * channels`` of them, at
    least). Returns ``(output, record, expected)``: the output region's bytes
    (``out_channel_pitch * channels``), the command's trace record and the golden
    machine's output region (:func:`host.golden.machine.execute_pool`)."""
    from hw.contract import COMMAND_BYTES, TRACE_BYTES
    from host.golden.machine import execute_pool
    from host.runtime import driver
    from host.runtime.layout import ALIGN
    x_u8 = np.asarray(x_u8, dtype=np.uint8).reshape(-1)
    out_bytes = p["out_channel_pitch"] * p["channels"]
    inp = ALIGN
    out = -(-(inp + x_u8.size + 64) // ALIGN) * ALIGN
    at = -(-(out + out_bytes + 64) // ALIGN) * ALIGN
    trace = at + ALIGN
    p = {**p, "input_addr": inp, "output_addr": out}
    memory = np.zeros(trace + ALIGN, dtype=np.uint8)
    memory[inp:inp + x_u8.size] = x_u8
    memory[at:at + COMMAND_BYTES] = np.frombuffer(bytes(driver.pool_record(p)), np.uint8)
    expected = memory.copy()
    bits = p["multiplier"]
    if not isinstance(bits, (int, np.integer)):         # the float's bits, as the record holds them
        bits = float32_bits(bits)
    execute_pool(lambda addr, n: expected[addr:addr + n], {**p, "multiplier": bits})
    start = {"run": None, "writes": driver.window_writes(cfg, 0, memory.size), "queue": (at, 1, trace),
             "timeout_cycles": 200 * (x_u8.size + out_bytes) + 100_000}
    result = run_layers(cfg, [start], latency=latency, pause=pause, seed=seed, memory=memory, dump=True,
                        engine=engine)
    layer = result["layers"][0]
    error = status_error(layer["status"], layer["error_code"])
    if error:
        raise error
    got = result["memory"]
    record = driver.trace_records(got[trace:trace + TRACE_BYTES])[0]
    return got[out:out + out_bytes], record, expected[out:out + out_bytes]


def main(argv=None):
    """``python -m host.runtime.sim``: one demo layer end to end, with the bit-exact check."""
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="python -m host.runtime.sim", description=main.__doc__)
    parser.add_argument("--kp", type=int, default=AccelConfig.kp)
    parser.add_argument("--yp", type=int, default=AccelConfig.yp)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--kernels", type=int, default=32)
    parser.add_argument("--size", type=int, default=16, help="input height and width")
    parser.add_argument("--latency", type=int, default=50, help="DRAM read latency, cycles")
    parser.add_argument("--waves", action="store_true",
                        help="write a waveform (FST if liblz4-dev is installed, else VCD)")
    args = parser.parse_args(argv)
    try:
        cfg = AccelConfig(kp=args.kp, yp=args.yp)
    except ValueError as exc:
        parser.error(str(exc))
    rng = np.random.default_rng(0)
    c, k = args.channels, args.kernels
    weight = rng.integers(-128, 128, size=(k, c, 3, 3)).astype(np.int8)
    conv = QuantConv(weight=weight, bias_q=rng.integers(-5000, 5000, size=k),
                     multiplier=np.float32(1.0 / (np.sqrt(c * 9) * 128 * 74 / 128)),
                     input_zero_point=128, output_zero_point=100, stride=1, padding=1)
    x = rng.integers(0, 256, size=(1, c, args.size, args.size), dtype=np.uint8)
    run = prepare_layer(cfg, conv, x)
    print(f"config: KP={cfg.kp} YP={cfg.yp}; layer: C={c} K={k} {args.size}x{args.size} 3x3 "
          f"stride 1 padding 1; tiles {({n: run.descriptor['tile_' + n] for n in ('k', 'c', 'xo', 'yo')})}")
    start = time.perf_counter()
    result = run_layers(cfg, [{"run": run}], latency=args.latency, waves=args.waves)
    seconds = time.perf_counter() - start
    layer = result["layers"][0]
    y = np.asarray(layer["output"], dtype=np.uint8).reshape(run.output_shape)
    expected = conv(x)[0]
    mismatches = int((y != expected).sum())
    counters = layer["counters"]
    macs = k * c * 9 * y.shape[1] * y.shape[2]
    print(f"bit-exact against the golden model: {'yes' if mismatches == 0 else 'NO'} "
          f"({mismatches} of {y.size} outputs differ)")
    for name, value in counters.items():
        print(f"  {name:24} {value}")
    print(f"  {'utilization':24} {macs / (counters['cycles'] * cfg.macs_per_cycle):.3f}")
    print(f"  {'simulation':24} {seconds:.1f} s (build included on first use)")
    if args.waves:
        print(f"waveform: {result.get('waves', 'not written')}")
    return 0 if mismatches == 0 and layer["error_code"] == 0 else 1
