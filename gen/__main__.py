"""``python -m gen``: emit the Verilog of the accelerator (or of the blocks named with
``--block``), manifest.json and dpegen_regs.h for a configuration."""

import argparse
import sys

from . import BLOCKS, add_config_arguments, config_from_arguments, generate


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gen", description=__doc__ or
                                     "Emit the accelerator's Verilog and manifest.json.")
    add_config_arguments(parser)
    parser.add_argument("--block", action="append", choices=sorted(BLOCKS),
                        help="emit this block (repeatable); default: accelerator")
    parser.add_argument("--out", default="build/verilog", help="output directory")
    args = parser.parse_args(argv)
    cfg = config_from_arguments(parser, args)
    manifest = generate(cfg, args.out, args.block)
    for name, module in manifest["modules"].items():
        print(f"{args.out}/{module['file']}: {len(module['ports'])} ports, {module['seconds']} s")
    print(f"{args.out}/manifest.json")
    print(f"{args.out}/dpegen_regs.h")


if __name__ == "__main__":
    sys.exit(main())
