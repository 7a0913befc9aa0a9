"""The compute datapath, in dataflow order: repacker -> streaming buffer -> line buffer -> DPE array (weights from the stationary buffer) -> output buffer -> requantizer; ``core`` wires them."""
