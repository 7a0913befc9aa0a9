import argparse
import dataclasses
import sys

from hw.config import AccelConfig

from . import BLOCKS, generate


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gen", description=__doc__ or
                                     "Emit the accelerator's Verilog and manifest.json.")
    defaults = AccelConfig()
    for f in dataclasses.fields(AccelConfig):
        parser.add_argument("--" + f.name.replace("_", "-"), type=int, default=getattr(defaults, f.name),
                            help=f"(default {getattr(defaults, f.name)})")
    parser.add_argument("--block", action="append", choices=sorted(BLOCKS),
                        help="emit this block (repeatable); default: accelerator")
    parser.add_argument("--out", default="build/verilog", help="output directory")
    args = parser.parse_args(argv)
    try:
        cfg = AccelConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(AccelConfig)})
    except ValueError as exc:
        parser.error(str(exc))
    manifest = generate(cfg, args.out, args.block)
    for name, module in manifest["modules"].items():
        print(f"{args.out}/{module['file']}: {len(module['ports'])} ports, {module['seconds']} s")
    print(f"{args.out}/manifest.json")
    print(f"{args.out}/dpegen_regs.h")


if __name__ == "__main__":
    sys.exit(main())
