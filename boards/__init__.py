"""Board support: platforms and bitstream builds for the generated accelerator."""
