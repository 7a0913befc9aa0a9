"""AXI4 and AXI4-Lite interface signatures (master-side flows) and board-wrapper helpers.

Members use the lower-case standard AXI names (``awaddr``, ``awvalid``, ``wdata`` ...), so a
component member ``m_axi`` flattens to ports ``m_axi__awaddr`` ..., which cocotbext-axi finds
with ``AxiBus.from_prefix(dut, "m_axi", bus_separator="__")``. Signals driven by the master
are ``Out``; a slave port is ``In(signature)`` (flipped).

``xilinx_port_names`` maps the flattened Amaranth names to the Xilinx convention
(``m_axi__arvalid`` -> ``m_axi_arvalid``) and ``xilinx_wrapper_verilog`` emits a thin
Verilog wrapper module that exposes them, for IP packaging / block designs.
"""

from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.config import check_power_of_two, check_range

__all__ = ["AXI4Signature", "AXI4LiteSignature", "AXI_RESP_OKAY", "AXI_RESP_EXOKAY",
           "AXI_RESP_SLVERR", "AXI_RESP_DECERR", "AXI_BURST_INCR", "xilinx_port_names",
           "xilinx_wrapper_verilog"]

AXI_RESP_OKAY, AXI_RESP_EXOKAY, AXI_RESP_SLVERR, AXI_RESP_DECERR = 0, 1, 2, 3
AXI_BURST_FIXED, AXI_BURST_INCR, AXI_BURST_WRAP = 0, 1, 2


def _check(name, value, lo, hi, power_of_two=False):
    (check_power_of_two if power_of_two else check_range)(name, value, lo, hi)


class AXI4Signature(wiring.Signature):
    """AXI4 master interface (full burst protocol).

    ``addr_width`` in [12, 64]; ``data_width`` a power of two in [32, 1024]; ``id_width`` in
    [1, 32]. ``read`` / ``write`` select the channel sets (both by default), so a read-only
    or write-only engine can expose just its half.
    """

    def __init__(self, *, addr_width, data_width, id_width=1, read=True, write=True):
        _check("addr_width", addr_width, 12, 64)
        _check("data_width", data_width, 32, 1024, power_of_two=True)
        _check("id_width", id_width, 1, 32)
        if not (read or write):
            raise ValueError("an AXI4 signature needs the read or the write channels")
        self.addr_width, self.data_width, self.id_width = addr_width, data_width, id_width
        self.read, self.write = read, write
        members = {}
        if write:
            members.update({
                "awid": Out(id_width), "awaddr": Out(addr_width), "awlen": Out(8),
                "awsize": Out(3), "awburst": Out(2), "awlock": Out(1), "awcache": Out(4),
                "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
                "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
                "wvalid": Out(1), "wready": In(1),
                "bid": In(id_width), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            })
        if read:
            members.update({
                "arid": Out(id_width), "araddr": Out(addr_width), "arlen": Out(8),
                "arsize": Out(3), "arburst": Out(2), "arlock": Out(1), "arcache": Out(4),
                "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
                "rid": In(id_width), "rdata": In(data_width), "rresp": In(2),
                "rlast": In(1), "rvalid": In(1), "rready": Out(1),
            })
        super().__init__(members)

    def __eq__(self, other):
        return (type(other) is type(self) and
                (self.addr_width, self.data_width, self.id_width, self.read, self.write) ==
                (other.addr_width, other.data_width, other.id_width, other.read, other.write))

    def __hash__(self):
        return hash((type(self), self.addr_width, self.data_width, self.id_width,
                     self.read, self.write))

    def __repr__(self):
        return (f"AXI4Signature(addr_width={self.addr_width}, data_width={self.data_width}, "
                f"id_width={self.id_width}, read={self.read}, write={self.write})")


class AXI4LiteSignature(wiring.Signature):
    """AXI4-Lite master interface; ``data_width`` 32 or 64, ``addr_width`` in [12, 64]."""

    def __init__(self, *, addr_width, data_width=32):
        _check("addr_width", addr_width, 12, 64)
        if data_width not in (32, 64) or isinstance(data_width, bool):
            raise ValueError(f"AXI4-Lite data_width must be 32 or 64, got {data_width!r}")
        self.addr_width, self.data_width = addr_width, data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return (type(other) is type(self) and
                (self.addr_width, self.data_width) == (other.addr_width, other.data_width))

    def __hash__(self):
        return hash((type(self), self.addr_width, self.data_width))

    def __repr__(self):
        return f"AXI4LiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"


def _ports(component):
    """(flattened name, direction, width) of every port of ``component``'s signature."""
    ports = []
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        ports.append((name, "output" if member.flow == Out else "input",
                      Value.cast(value).shape().width))
    return ports


def xilinx_port_names(component, prefixes=("m_axi", "s_axil")):
    """{Amaranth port name: Xilinx-convention name} for every port of ``component``.

    ``m_axi__arvalid`` -> ``m_axi_arvalid``; ports outside ``prefixes`` keep their name
    with ``__`` replaced by ``_``.
    """
    out = {}
    for name, _, _ in _ports(component):
        head, _, rest = name.partition("__")
        if head in prefixes and rest:
            out[name] = f"{head}_{rest.replace('__', '_')}"
        else:
            out[name] = name.replace("__", "_")
    if len(set(out.values())) != len(out):
        raise ValueError("Xilinx-convention port names collide")
    return out


def xilinx_wrapper_verilog(component, inner_name, wrapper_name, prefixes=("m_axi", "s_axil"),
                           clock="clk", reset="rst"):
    """Verilog text of ``wrapper_name``, instantiating ``inner_name`` (the Verilog of
    ``component``) with Xilinx-convention port names, ``aclk`` and active-low ``aresetn``."""
    names = xilinx_port_names(component, prefixes)
    decls = ["    input wire aclk", "    input wire aresetn"]
    conns = [f"        .{clock}(aclk)", f"        .{reset}(~aresetn)"]
    for name, direction, width in _ports(component):
        rng = f"[{width - 1}:0] " if width > 1 else ""
        decls.append(f"    {direction} wire {rng}{names[name]}")
        conns.append(f"        .{name}({names[name]})")
    return (f"module {wrapper_name} (\n" + ",\n".join(decls) + "\n);\n"
            f"    {inner_name} inner (\n" + ",\n".join(conns) + "\n    );\nendmodule\n")
