"""DRAM layout, the register-level driver, and the simulation and PYNQ backends."""
