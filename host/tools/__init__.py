"""Reference networks, design-space exploration and the RTL fuzzer."""
