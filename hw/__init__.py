"""Amaranth elaborators of the dpegen convolution accelerator."""
