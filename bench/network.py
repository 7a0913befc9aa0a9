"""A whole quantized network as one executable through the RTL, checked against PyTorch.

``python -m bench.network --model resnet18`` (``make network MODEL=resnet18``) builds
``host.tools.models.quantized(model, mode, seed=0, size=224)``, compiles it
(``host.compiler.program.compile``) and builds its executable (every conv and Linear on the
accelerator, the host operators between segments as numpy models), saves it, and:

1. runs one frame on the fast RTL engine (:mod:`host.runtime.sim.rtlsim`), one START per
   segment, and compares the network's output and every accelerator layer's output with
   PyTorch's (for that check the frame runs the executable built with ``reuse=False``,
   which keeps every tensor; the arena figures are the real executable's);
2. runs frames of the saved executable, loaded afresh, on the PYNQ backend over a fake
   board (:mod:`host.runtime.pynq_fake`, the golden model behind the registers): the
   host's own work per frame as a board would see it (the golden model's compute at each
   START is not host time).

It prints one line per accelerator command (cycles, utilization = MACs / (cycles x MACs
per cycle), DRAM bytes, stalls: the trace records the accelerator wrote) and the per-frame
figures, and writes ``<out>/<model>.json`` and a PNG of per-layer utilization.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import gen

MODELS = ("resnet18", "resnet50", "mobilenet_v2", "inception_block", "shufflenet_block",
          "resnext_block", "inception_v3_block")


def _plot(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(rows)), 4.0))
    ax.bar(range(len(rows)), [100 * r["utilization"] for r in rows], color="tab:blue")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["layer"].removeprefix("model.") for r in rows], rotation=90, fontsize=6)
    ax.set_ylabel("MAC utilization (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def board_frames(path, x, frames):
    """Run ``frames`` frames of the executable saved at ``path`` on the PYNQ backend over
    a fake board; the last frame's report and the output."""
    import host.runtime.pynq_fake as pynq_fake
    from host.runtime.executable import Executable
    board = pynq_fake.FakeBoard(Executable.load(path).cfg)
    previous = sys.modules.get("pynq")
    sys.modules["pynq"] = board.module()
    try:
        exe = Executable.load(path)
        session = exe.session("pynq", bitfile="dpegen.bit")
        reports = []
        for _ in range(frames):
            y, _ = session.run(x)
            reports.append(session.report)
    finally:
        if previous is None:
            sys.modules.pop("pynq", None)
        else:
            sys.modules["pynq"] = previous
    return y, reports


def cycle_breakdown(rows, cycles):
    """Shares of a frame's ``cycles`` (START to interrupt), from the trace records' counters:
    the layers' array-busy cycles and their stalls (no window: ``input``; a window
    waiting for weights; the array held by the output), the rest of the layers' cycles
    (a tile's pipeline fill and drain, a layer's table and last writes), the pooling
    engine's passes, and what is left (the queue's fetches and trace writes)."""
    layers = [r for r in rows if not r["pool"]]
    parts = {name: sum(r[f"{key}_cycles"] for r in layers) for name, key in (
        ("array_busy", "array_busy"), ("input_stall", "stall_input"), ("weight_stall", "stall_weights"),
        ("output_stall", "stall_output"))}
    parts["layer_other"] = sum(r["cycles"] for r in layers) - sum(parts.values())
    parts["pooling"] = sum(r["cycles"] for r in rows if r["pool"])
    parts["queue"] = cycles - sum(r["cycles"] for r in rows)
    return {name: value / cycles if cycles else 0.0 for name, value in parts.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.network", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet18", choices=MODELS)
    parser.add_argument("--mode", default="eager", choices=("eager", "fx"))
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    gen.add_config_arguments(parser)        # --kp, --yp, --dsp-packing, every buffer depth
    parser.add_argument("--latency", type=int, default=50, help="DRAM read latency, cycles")
    parser.add_argument("--frames", type=int, default=5, help="frames on the fake board")
    parser.add_argument("--out", default="build/network")
    args = parser.parse_args(argv)

    import torch

    from host.tools import models
    from host.compiler.program import compile, reference_tensors, torch_layer_outputs

    torch.backends.quantized.engine = "qnnpack"
    cfg = gen.config_from_arguments(parser, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    model_q, x = models.quantized(args.model, args.mode, seed=0, size=args.size)
    program = compile(model_q, x, cfg=cfg, latency=args.latency)
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    exe = program.build(cfg)
    t_build = time.perf_counter() - t0
    path = exe.save(out / f"{args.model}.dpeg")
    checked = program.build(cfg, reuse=False)
    st = program.stats()
    print(f"{args.model} ({args.mode}) at {args.size}x{args.size}, KP={cfg.kp} YP={cfg.yp}{' packed' if cfg.dsp_packing else ''}: "
          f"{st['accelerator_layers']} accelerator layers ({st['accelerator_macs'] / 1e9:.2f} GMAC), "
          f"{st['cpu_layers']} CPU layers; quantized and compiled in {t_compile:.1f} s, executable built "
          f"in {t_build:.1f} s (planner included, {exe.info['planned_shapes']} layer shapes)")
    print(exe.summary().split("\n")[1])

    t0 = time.perf_counter()
    got = program.run(x, backend="rtl", record=True)
    t_run = time.perf_counter() - t0
    report = program.report
    expected, per_layer = torch_layer_outputs(model_q, program, x)
    final_exact = bool(torch.equal(got, expected))
    layer_exact = {}
    for name, outs in per_layer.items():
        mine = program.layer_outputs.get(name, [])
        layer_exact[name] = len(mine) == len(outs) and all(
            torch.equal(a.int_repr(), b.int_repr()) for a, b in zip(mine, outs))
    all_exact = final_exact and all(layer_exact.values()) and sorted(program.layer_outputs) == sorted(per_layer)

    rows = []
    reference = reference_tensors(model_q, program, x)
    for c in report.layers:
        tensor = c["output"]
        exact = tensor not in reference or bool(torch.equal(program.tensors[tensor].int_repr(),
                                                            reference[tensor].int_repr()))
        rows.append({**{k: c.get(k) for k in ("layer", "pool", "add", "C", "K", "H", "W", "kernel", "stride",
                                              "padding", "depthwise", "image", "group", "source", "tiles",
                                              "macs", "cycles", "array_busy_cycles", "dram_read_bytes",
                                              "dram_write_bytes", "stall_input_cycles",
                                              "stall_weights_cycles", "stall_output_cycles")},
                     "utilization": c["macs"] / (c["cycles"] * cfg.macs_per_cycle),
                     "exact": exact})
    print(f"\n{'layer':34} {'shape':26} {'cycles':>10} {'util':>6} {'DRAM rd':>10} {'DRAM wr':>9} "
          f"{'stall in':>9} {'stall w':>8} {'stall out':>9}  exact")
    for r in rows:
        if r["pool"]:
            shape = f"{r['pool'].lower()} {r['C']}ch @{r['H']}x{r['W']}" + (
                f" k{r['kernel']} s{r['stride']}" if r["pool"] in ("MAX", "AVG") else "")
        else:
            k = r["source"]["kernel"] if r["source"] else r["kernel"]
            k = k if isinstance(k, int) else "x".join(map(str, k))
            shape = f"{r['C']}->{r['K']} k{k} s{r['stride']} @{r['H']}x{r['W']}" + (" +add" if r["add"] else "")
        print(f"{r['layer'].removeprefix('model.'):34} {shape:26} {r['cycles']:>10} "
              f"{100 * r['utilization']:>5.1f}% {r['dram_read_bytes']:>10} {r['dram_write_bytes']:>9} "
              f"{r['stall_input_cycles']:>9} {r['stall_weights_cycles']:>8} {r['stall_output_cycles']:>9}  "
              f"{'yes' if r['exact'] else 'NO'}")
    layer_cycles = sum(r["cycles"] for r in rows if not r["pool"])
    pool_cycles = sum(r["cycles"] for r in rows if r["pool"])
    total_macs = sum(r["macs"] for r in rows)
    utilization = total_macs / (report.cycles * cfg.macs_per_cycle) if report.cycles else 0.0
    print(f"\ntotal: {len(rows)} commands in {report.starts} starts ({report.segments} segments), "
          f"{report.cycles} cycles START to interrupt ({layer_cycles} in the layers themselves, "
          f"{pool_cycles} ({100 * pool_cycles / report.cycles:.2f}%) in the pooling engine's passes, "
          f"{report.cycles - layer_cycles - pool_cycles} for the queue's fetches and trace writes), "
          f"utilization {100 * utilization:.1f}%, DRAM {sum(r['dram_read_bytes'] for r in rows) / 1e6:.1f} MB "
          f"read, {sum(r['dram_write_bytes'] for r in rows) / 1e6:.1f} MB written")
    breakdown = cycle_breakdown(rows, report.cycles)
    print("where the cycles go (the RTL's counters): " + ", ".join(
        f"{name.replace('_', ' ')} {100 * share:.1f}%" for name, share in breakdown.items()))
    print(f"network output equals PyTorch: {'yes' if final_exact else 'NO'}; every layer output "
          f"equals PyTorch's: {'yes' if all_exact else 'NO'}")

    y_board, board = board_frames(path, x.numpy(), args.frames)
    board_exact = bool(np.array_equal(y_board, expected.numpy()))
    last = sorted(board, key=lambda r: r.seconds)[len(board) // 2]         # the median frame
    host = {"bytes_written": last.bytes_written, "bytes_read": last.bytes_read,
            "register_accesses": last.register_accesses, "seconds": last.seconds,
            "seconds_min": min(r.seconds for r in board), "frames": len(board),
            "host_ops": [{k: op[k] for k in ("name", "kind", "seconds", "bytes_read", "bytes_written")}
                         for op in last.host_ops],
            "output_equals_pytorch": board_exact}
    input_bytes = int(np.prod(x.shape))
    print(f"per frame on the board (saved executable, PYNQ backend, fake board): {last.starts} starts, "
          f"{host['register_accesses']} register accesses, {host['bytes_written']} bytes written "
          f"(input {input_bytes}), {host['bytes_read']} bytes read, host time {1e3 * host['seconds']:.2f} ms "
          f"(median of {len(board)}; host operators "
          f"{1e3 * sum(o['seconds'] for o in host['host_ops']):.2f} ms); output equals PyTorch: "
          f"{'yes' if board_exact else 'NO'}")
    print(f"executable: image {exe.image_size / 2**20:.1f} MiB (static {exe.image.size / 2**20:.1f} MiB), "
          f"arena {exe.arena[1] / 2**20:.2f} MiB for {exe.tensor_bytes / 2**20:.2f} MiB of tensors; "
          f"wall time: RTL frame {t_run:.1f} s ({report.cycles / t_run / 1000:.0f}k simulated cycles/s)")

    result = {"model": args.model, "mode": args.mode, "size": args.size, "config": cfg.to_dict(),
              "latency": args.latency,
              "starts": report.starts, "segments": report.segments, "cycles": report.cycles,
              "layer_cycles": layer_cycles, "pool_cycles": pool_cycles, "macs": total_macs,
              "utilization": utilization, "breakdown": breakdown, "fused_additions": len(exe.info["fused"]),
              "host_ops": [op.kind for op in exe.host_ops],
              "host": host,
              "rtl_host": {"bytes_written": report.bytes_written, "bytes_read": report.bytes_read,
                           "register_accesses": report.register_accesses},
              "executable": {"path": str(path), "image_bytes": exe.image_size,
                             "static_bytes": int(exe.image.size), "arena_bytes": exe.arena[1],
                             "tensor_bytes": exe.tensor_bytes, "commands": exe.info["commands"],
                             "planned_shapes": exe.info["planned_shapes"], "build_seconds": t_build,
                             "host_ops": [op.kind for op in exe.host_ops],
                             "checked_with": "the reuse=False build (every tensor kept)",
                             "checked_image_bytes": checked.image_size},
              "layers": rows, "exact": all_exact, "final_output_exact": final_exact,
              "run_seconds": t_run, "compile_seconds": t_compile, "stats": st}
    (out / f"{args.model}.json").write_text(json.dumps(result, indent=2, default=str))
    _plot(rows, out / f"{args.model}_utilization.png",
          f"{args.model} {args.size}x{args.size} on KP={cfg.kp} YP={cfg.yp}{' packed' if cfg.dsp_packing else ''}: "
          f"{100 * utilization:.1f}% overall, {report.cycles / 1e6:.1f}M cycles")
    print(f"wrote {out / (args.model + '.json')}, {path} and {out / (args.model + '_utilization.png')}")
    return 0 if all_exact and board_exact else 1


if __name__ == "__main__":
    sys.exit(main())
