"""Pixels in and out: the canonical decoder, our PNG format (docs/png.md) and the encoder."""
