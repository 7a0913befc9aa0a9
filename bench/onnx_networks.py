"""Reference networks through the ONNX path, checked against ONNX Runtime bit for bit.

``python -m bench.onnx_networks`` exports ResNet-18, ResNet-50 and MobileNetV2
(``host.tools.models.build``, seeded random weights) with ``torch.onnx.export`` at 224 x 224,
quantizes each with ``onnxruntime.quantization.quantize_static`` (random normal calibration
data) in both formats (QDQ, QOperator) and both activation types (uint8, int8; int8
weights per channel), compiles it (``host.compiler.onnx_frontend.compile_onnx``), runs one
frame on the golden backend (the executable built with ``reuse=False``, which keeps every
tensor) and compares with ONNX Runtime (CPU, default optimizations):

* the network's output with ONNX Runtime's on the model itself;
* every accelerator layer's output, and every other tensor of the frame (a fused
  addition's sum among them), with ONNX Runtime's tensor from the graph it optimized (run
  at the default level with those tensors as extra graph outputs), after checking that
  graph's output equals the model's.

One line per network x format x activation type: equal or not, layers compared, the
accelerator's share of the MACs (ONNX Runtime computes the int8 QDQ convs it does not fuse
in float, and those run in ONNX Runtime on the host here too), segments, host operators by
kind, seconds. ``--backend rtl`` runs the frames through the RTL (the fast C++ engine)
instead of the golden backend. ``--json`` writes the rows.

``python -m bench.onnx_networks --onnx MODEL.onnx --backend rtl`` (what ``make network
MODEL=MODEL.onnx`` runs) takes one quantized model instead: random float32 inputs of its
static shapes, one frame on ``--backend`` (``rtl``: the fast C++ RTL engine) for a
``--kp`` x ``--yp`` accelerator, the same comparisons with ONNX Runtime, the summary and
one line per accelerator command (cycles, MACs per cycle).
"""

import argparse
import json
import logging
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

NETWORKS = ("resnet18", "resnet50", "mobilenet_v2")
FORMATS = ("qdq", "qop")
ACTIVATIONS = ("u8", "s8")


def export(name, size, folder, seed=0):
    """``host.tools.models.build(name)`` exported to ONNX (opset 17, static shapes)."""
    import torch
    from host.tools import models
    model = models.build(name, seed=seed)
    path = Path(folder) / f"{name}_{size}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, size, size),), str(path), dynamo=False, opset_version=17)
    return path


def quantize(path, fmt, act, per_channel=True, samples=2, seed=0):
    """``quantize_static`` of the float model at ``path``; returns the quantized model's path."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    model = onnx.load(path)
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.data = iter([{inp.name: rng.standard_normal(shape).astype(np.float32)} for _ in range(samples)])

        def get_next(self):
            return next(self.data, None)
    out = Path(path).with_name(f"{Path(path).stem}_{fmt}_{act}.onnx")
    logging.getLogger().setLevel(logging.ERROR)
    quantize_static(str(path), str(out), Reader(),
                    quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8 if act == "u8" else QuantType.QInt8,
                    weight_type=QuantType.QInt8, per_channel=per_channel)
    return out


def _inputs(model, seed):
    from host.compiler.onnx_frontend import _graph_inputs, _np_type
    rng = np.random.default_rng(seed)
    xs = []
    for i in _graph_inputs(model):
        shape = [d.dim_value for d in i.type.tensor_type.shape.dim]
        if not all(shape):
            raise SystemExit(f"input {i.name!r} has dynamic dimensions {shape}: export with static shapes")
        dtype = _np_type(i.type.tensor_type.elem_type)
        xs.append(rng.standard_normal(shape).astype(dtype) if dtype == np.float32
                  else rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, shape).astype(dtype))
    return xs


def check(path, seed=1, backend="golden", cfg=None, program_out=None):
    """Compile, run on ``backend``, compare with ONNX Runtime: a result row."""
    import onnx
    from host.compiler.onnx_frontend import compile_onnx, ort_run
    model = onnx.load(path)
    x = _inputs(model, seed)
    t0 = time.perf_counter()
    program = compile_onnx(model, x, cfg=cfg)
    if program_out is not None:
        program_out.append(program)
    t1 = time.perf_counter()
    ours = program.run(*x, backend=backend, record=True)
    t2 = time.perf_counter()
    reference = ort_run(model, x)
    output_equal = all(np.array_equal(a, b) for a, b in zip(ours, reference.values()))
    tensors = {n: program.layer_tensors[n] for n in program.layer_outputs}
    # every other tensor of the frame the optimized graph names (the fused additions' sums)
    named = {o for node in program.optimized_model.graph.node for o in node.output}
    others = [n for n in program.tensors if n in named and n not in tensors.values()]
    layer_ref = ort_run(program.optimized_model, x, extra_outputs=list(tensors.values()) + others)
    optimized_equal = all(np.array_equal(a, b) for a, b in zip(list(layer_ref.values())[:len(reference)],
                                                               reference.values()))
    mismatched = [n for n, t in tensors.items() if not np.array_equal(program.layer_outputs[n][0], layer_ref[t])]
    mismatched += [n for n in others if not np.array_equal(program.tensors[n], layer_ref[n])]
    exe = program.build()
    stats = program.stats()
    return {"output_equal": bool(output_equal), "optimized_graph_equal": bool(optimized_equal),
            "layers_compared": len(tensors), "tensors_compared": len(tensors) + len(others),
            "layers_mismatched": mismatched,
            "accelerator_layers": stats["accelerator_layers"], "cpu_layers": stats["cpu_layers"],
            "accelerator_share": stats["accelerator_share"], "segments": len(exe.segments),
            "host_ops": dict(Counter(op.kind for op in exe.host_ops)),
            "compile_s": round(t1 - t0, 2), "run_s": round(t2 - t1, 2), "backend": backend,
            "starts": program.report.starts, "cycles": program.report.cycles,
            "max_abs_diff": float(max(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))
                                      for a, b in zip(ours, reference.values())))}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.onnx_networks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--models", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--activations", nargs="+", default=list(ACTIVATIONS), choices=ACTIVATIONS)
    parser.add_argument("--per-tensor", action="store_true", help="per-tensor weights (default per channel)")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    parser.add_argument("--onnx", type=Path, help="one quantized ONNX model instead of the reference networks")
    parser.add_argument("--backend", default="golden", choices=("golden", "rtl"))
    parser.add_argument("--kp", type=int, default=None, help="with --onnx: the accelerator's KP")
    parser.add_argument("--yp", type=int, default=None, help="with --onnx: the accelerator's YP")
    args = parser.parse_args(argv)
    if args.onnx:
        return one_model(args)
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            path = export(name, args.size, tmp)
            for fmt in args.formats:
                for act in args.activations:
                    qpath = quantize(path, fmt, act, per_channel=not args.per_tensor)
                    row = {"model": name, "size": args.size, "format": fmt, "activations": act,
                           "weights": "per-tensor" if args.per_tensor else "per-channel",
                           **check(qpath, backend=args.backend)}
                    rows.append(row)
                    good = row["output_equal"] and row["optimized_graph_equal"] and not row["layers_mismatched"]
                    ok &= good
                    print(f"{name:13} {fmt:4} {act}  output {'equal' if row['output_equal'] else 'DIFFERS'}, "
                          f"{row['tensors_compared']} tensors compared ({row['layers_compared']} layer outputs), "
                          f"{len(row['layers_mismatched'])} differ; "
                          f"accelerator {row['accelerator_layers']} layers ({100 * row['accelerator_share']:.1f}% "
                          f"of MACs), host-ORT layers {row['cpu_layers']}, {row['segments']} segments, "
                          f"host ops {row['host_ops']}; compile {row['compile_s']} s, {args.backend} {row['run_s']} s"
                          + (f", {row['starts']} starts, {row['cycles']} cycles" if args.backend == "rtl" else ""),
                          flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print("all equal to ONNX Runtime" if ok else "MISMATCH")
    return 0 if ok else 1


def one_model(args):
    """``--onnx MODEL.onnx``: one model on ``--backend``, checked against ONNX Runtime."""
    from hw.config import AccelConfig
    cfg = AccelConfig(**{k: v for k, v in (("kp", args.kp), ("yp", args.yp)) if v is not None})
    programs = []
    row = check(args.onnx, backend=args.backend, cfg=cfg, program_out=programs)
    program = programs[0]
    print(program.summary())
    if args.backend != "golden":
        print(f"\n{'command':44} {'C->K':>11} {'HxW':>9} {'cycles':>10} {'MAC/cycle':>9}")
        for c in program.counters:
            shape = f"pool {c['pool']}" if c.get("pool") else f"{c['C']}->{c['K']}"
            print(f"{c['layer'][:44]:44} {shape:>11} {c['H']:>4}x{c['W']:<4} {c['cycles']:>10} "
                  f"{c['macs'] / max(c['cycles'], 1):9.1f}")
        print(f"frame: {program.report.starts} starts, {program.report.cycles} cycles")
    good = row["output_equal"] and row["optimized_graph_equal"] and not row["layers_mismatched"]
    print(f"{args.onnx} on {args.backend} (KP={cfg.kp} YP={cfg.yp}): output "
          f"{'equal' if row['output_equal'] else 'DIFFERS'} to ONNX Runtime, {row['tensors_compared']} tensors "
          f"compared ({row['layers_compared']} layer outputs), {len(row['layers_mismatched'])} differ")
    if args.json:
        args.json.write_text(json.dumps(row, indent=2))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
