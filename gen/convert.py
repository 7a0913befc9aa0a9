"""Verilog conversion for every tool of the project (generator, simulator, resource report,
board build): ``amaranth.back.verilog.convert`` without source locations, so the output
is reproducible, and with the initial contents of memories written as one constant.

Amaranth 0.5 builds a memory's ``$meminit_v2`` data one bit at a time, one Python object
per bit; the default accelerator's buffers hold about 2.6 Mbit, which made that step most
of the conversion time. :func:`convert` emits the same cell, with the same constant, from
the rows directly: the RTLIL, and so the Verilog, are identical (a test compares them).
"""

import contextlib

from amaranth.back import rtlil, verilog
from amaranth.hdl import _nir

__all__ = ["convert"]


def _emit_memory(self, cell_idx, cell):
    """``ModuleEmitter.emit_memory`` of Amaranth 0.5, with DATA formatted row by row."""
    memory_info = self.memories[cell_idx]
    mask = (1 << cell.width) - 1
    data = "".join(format(row & mask, f"0{cell.width}b") for row in reversed(cell.init))
    self.builder.cell("$meminit_v2", ports={
        "ADDR": self.sigspec(),
        "DATA": f"{len(data)}'{data}" if data else self.sigspec(),
        "EN": self.sigspec(_nir.Value.ones(cell.width)),
    }, parameters={
        "MEMID": memory_info.memid,
        "ABITS": 0,
        "WIDTH": cell.width,
        "WORDS": cell.depth,
        "PRIORITY": 0,
    }, src_loc=cell.src_loc)


@contextlib.contextmanager
def _row_wise_memory_init():
    original = rtlil.ModuleEmitter.emit_memory
    rtlil.ModuleEmitter.emit_memory = _emit_memory
    try:
        yield
    finally:
        rtlil.ModuleEmitter.emit_memory = original


def convert(component, name):
    """Verilog text of ``component`` as module ``name``."""
    with _row_wise_memory_init():
        return verilog.convert(component, name=name, emit_src=False)
