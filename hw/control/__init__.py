"""Control: the AXI4-Lite register bank, the controller, and the two walkers of the loop nest (DMA tiler, core command sequencer)."""
