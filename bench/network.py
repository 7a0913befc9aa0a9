"""A whole quantized network through the RTL on the fast engine, checked against PyTorch.

``python -m bench.network --model resnet18`` (``make network MODEL=resnet18``) builds
``host.tools.models.quantized(model, mode, seed=0, size=224)``, compiles it for the accelerator
(every conv, depthwise and grouped ones included, and every Linear), runs it with ``backend="rtl"`` (every conv and Linear
in the Verilated accelerator, :mod:`host.runtime.sim.rtlsim`), and compares the network's output and
every accelerator layer's output with PyTorch's. It prints one line per accelerator layer
(cycles, utilization = MACs / (cycles x MACs per cycle), DRAM bytes, stall cycles, from
the RTL's counters) and writes ``<out>/<model>.json`` and a PNG of per-layer utilization.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from hw.config import AccelConfig

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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.network", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet18", choices=MODELS)
    parser.add_argument("--mode", default="eager", choices=("eager", "fx"))
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--kp", type=int, default=AccelConfig.kp)
    parser.add_argument("--yp", type=int, default=AccelConfig.yp)
    parser.add_argument("--latency", type=int, default=50, help="DRAM read latency, cycles")
    parser.add_argument("--out", default="build/network")
    args = parser.parse_args(argv)

    import torch

    from host.tools import models
    from host.runtime.sim import rtlsim
    from host.compiler.program import compile, torch_layer_outputs

    torch.backends.quantized.engine = "qnnpack"
    cfg = AccelConfig(kp=args.kp, yp=args.yp)
    t0 = time.perf_counter()
    model_q, x = models.quantized(args.model, args.mode, seed=0, size=args.size)
    program = compile(model_q, x, cfg=cfg, latency=args.latency, progress=True)
    t_compile = time.perf_counter() - t0
    st = program.stats()
    print(f"{args.model} ({args.mode}) at {args.size}x{args.size}, KP={cfg.kp} YP={cfg.yp}: "
          f"{st['accelerator_layers']} accelerator layers ({st['accelerator_macs'] / 1e9:.2f} GMAC), "
          f"{st['cpu_layers']} CPU layers; quantized and compiled in {t_compile:.1f} s")
    t0 = time.perf_counter()
    rtlsim.harness(cfg)                  # Verilog, harness build on first use, process start
    t_harness = time.perf_counter() - t0

    t0 = time.perf_counter()
    got = program.run(x, backend="rtl", record=True)
    t_run = time.perf_counter() - t0
    expected, per_layer = torch_layer_outputs(model_q, program, x)

    macs = {p["name"]: p["macs"] for p in program.layers}
    calls = {p["name"]: p["calls"] for p in program.layers}
    seen, rows = {}, []
    for c in program.counters:
        name = c["layer"]
        index = seen.get(name, 0)
        seen[name] = index + 1
        out = program.layer_outputs.get(name, [])
        ref = per_layer.get(name, [])
        exact = index < len(out) and index < len(ref) and \
            torch.equal(out[index].int_repr(), ref[index].int_repr())
        layer_macs = macs[name] // max(1, calls[name])
        rows.append({"layer": name, "C": c["C"], "K": c["K"], "H": c["H"], "W": c["W"],
                     "kernel": c["kernel"], "stride": c["stride"], "source": c["source"],
                     "macs": layer_macs, "cycles": c["cycles"],
                     "utilization": layer_macs / (c["cycles"] * cfg.macs_per_cycle),
                     "dram_read_bytes": c["dram_read_bytes"], "dram_write_bytes": c["dram_write_bytes"],
                     "array_busy_cycles": c["array_busy_cycles"],
                     "stall_input_cycles": c["stall_input_cycles"],
                     "stall_weights_cycles": c["stall_weights_cycles"],
                     "stall_output_cycles": c["stall_output_cycles"],
                     "seconds": c["seconds"], "exact": bool(exact)})
    final_exact = bool(torch.equal(got, expected))
    all_exact = final_exact and all(r["exact"] for r in rows) and \
        sorted(program.layer_outputs) == sorted(per_layer)

    print(f"\n{'layer':34} {'shape':26} {'cycles':>10} {'util':>6} {'DRAM rd':>10} {'DRAM wr':>9} "
          f"{'stall in':>9} {'stall w':>8} {'stall out':>9} {'s':>6}  exact")
    for r in rows:
        k = r["source"]["kernel"] if r["source"] else r["kernel"]
        k = k if isinstance(k, int) else "x".join(map(str, k))
        shape = f"{r['C']}->{r['K']} k{k} s{r['stride']} @{r['H']}x{r['W']}"
        print(f"{r['layer'].removeprefix('model.'):34} {shape:26} {r['cycles']:>10} "
              f"{100 * r['utilization']:>5.1f}% {r['dram_read_bytes']:>10} {r['dram_write_bytes']:>9} "
              f"{r['stall_input_cycles']:>9} {r['stall_weights_cycles']:>8} {r['stall_output_cycles']:>9} "
              f"{r['seconds']:>6.2f}  {'yes' if r['exact'] else 'NO'}")
    cycles = sum(r["cycles"] for r in rows)
    total_macs = sum(r["macs"] for r in rows)
    utilization = total_macs / (cycles * cfg.macs_per_cycle) if cycles else 0.0
    rate = cycles / t_run if t_run else 0.0
    print(f"\ntotal: {len(rows)} accelerator layers, {cycles} cycles, utilization {100 * utilization:.1f}%, "
          f"DRAM {sum(r['dram_read_bytes'] for r in rows) / 1e6:.1f} MB read, "
          f"{sum(r['dram_write_bytes'] for r in rows) / 1e6:.1f} MB written")
    print(f"network output equals PyTorch: {'yes' if final_exact else 'NO'}; every layer output "
          f"equals PyTorch's: {'yes' if all_exact else 'NO'}")
    print(f"wall time: run {t_run:.1f} s ({rate / 1000:.0f}k simulated cycles/s over the network, "
          f"CPU layers and host work included), harness start {t_harness:.1f} s, "
          f"quantize + compile {t_compile:.1f} s")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"model": args.model, "mode": args.mode, "size": args.size, "config": cfg.to_dict(),
              "latency": args.latency, "layers": rows, "cycles": cycles, "macs": total_macs,
              "utilization": utilization, "exact": all_exact, "final_output_exact": final_exact,
              "run_seconds": t_run, "harness_seconds": t_harness, "compile_seconds": t_compile,
              "stats": st}
    (out / f"{args.model}.json").write_text(json.dumps(report, indent=2, default=str))
    _plot(rows, out / f"{args.model}_utilization.png",
          f"{args.model} {args.size}x{args.size} on KP={cfg.kp} YP={cfg.yp}: "
          f"{100 * utilization:.1f}% overall, {cycles / 1e6:.1f}M cycles")
    print(f"wrote {out / (args.model + '.json')} and {out / (args.model + '_utilization.png')}")
    return 0 if all_exact else 1


if __name__ == "__main__":
    sys.exit(main())
