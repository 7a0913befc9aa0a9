"""Golden models: the arithmetic, the loop nest's DMA transfers and core commands, tiles."""
