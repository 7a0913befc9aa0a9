"""AXI4-Lite register bank generated from the register map of :mod:`hw.contract`."""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.dma.axi import AXI4LiteSignature
from hw.contract import RegisterMap

__all__ = ["CsrBank"]


def _constant(reg):
    return reg.access == "ro" and (reg.name in ("MAGIC", "VERSION") or reg.name.startswith("CFG_"))


class CsrBank(wiring.Component):
    """32-bit registers of a :class:`RegisterMap` behind an AXI4-Lite slave ``s_axil``.

    Per register (member names are the lower-case register names):
    ``rw``: ``Out(32)`` value, written by the bus; ``ro``: ``In(32)`` value read by the
    bus (identification registers are constants, with no port); ``wo``: ``Out(32)`` last
    written value and ``<name>_write``, a one-cycle pulse per write (reads return 0);
    ``w1c``: ``In(32)`` ``<name>_set`` bits to set, ``Out(32)`` value; the bus clears the
    bits it writes 1 to.

    One write (AW and W together) and one read are served at a time; B and R follow
    one cycle after the request. Unmapped offsets read 0 and ignore writes.
    """

    def __init__(self, register_map: RegisterMap, *, addr_width=12):
        if register_map.size > 1 << addr_width:
            raise ValueError(f"addr_width must cover {register_map.size} bytes of registers, "
                             f"got {addr_width}")
        self.register_map = register_map
        members = {"s_axil": In(AXI4LiteSignature(addr_width=addr_width))}
        for reg in register_map:
            name = reg.name.lower()
            if reg.access == "rw":
                members[name] = Out(32)
            elif reg.access == "ro" and not _constant(reg):
                members[name] = In(32)
            elif reg.access == "wo":
                members[name] = Out(32)
                members[f"{name}_write"] = Out(1)
            elif reg.access == "w1c":
                members[name] = Out(32)
                members[f"{name}_set"] = In(32)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.s_axil

        # writes
        bvalid = Signal()
        take_write = bus.awvalid & bus.wvalid & ~bvalid
        m.d.comb += [bus.awready.eq(take_write), bus.wready.eq(take_write),
                     bus.bvalid.eq(bvalid), bus.bresp.eq(0)]
        with m.If(take_write):
            m.d.sync += bvalid.eq(1)
        with m.Elif(bus.bready):
            m.d.sync += bvalid.eq(0)
        write_index = bus.awaddr[2:]
        mask = Signal(32)
        for byte in range(4):
            m.d.comb += mask[8 * byte:8 * byte + 8].eq(bus.wstrb[byte].replicate(8))
        written = (bus.wdata & mask)

        for reg in self.register_map:
            name = reg.name.lower()
            hit = take_write & (write_index == reg.offset // 4)
            if reg.access in ("rw", "wo"):
                value = getattr(self, name)
                with m.If(hit):
                    m.d.sync += value.eq((value & ~mask) | written)
                if reg.access == "wo":
                    pulse = getattr(self, f"{name}_write")
                    m.d.sync += pulse.eq(hit)
            elif reg.access == "w1c":
                value = getattr(self, name)
                m.d.sync += value.eq((value & ~(written & hit.replicate(32))) | getattr(self, f"{name}_set"))

        # reads
        rvalid = Signal()
        rdata = Signal(32)
        m.d.comb += [bus.arready.eq(~rvalid), bus.rvalid.eq(rvalid), bus.rdata.eq(rdata),
                     bus.rresp.eq(0)]
        with m.If(bus.arvalid & ~rvalid):
            m.d.sync += [rvalid.eq(1), rdata.eq(0)]
            with m.Switch(bus.araddr[2:]):
                for reg in self.register_map:
                    with m.Case(reg.offset // 4):
                        if _constant(reg):
                            m.d.sync += rdata.eq(reg.reset)
                        elif reg.access != "wo":
                            m.d.sync += rdata.eq(getattr(self, reg.name.lower()))
        with m.Elif(bus.rready):
            m.d.sync += rvalid.eq(0)
        return m
