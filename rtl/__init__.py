"""rtl/: the Amaranth 0.5 design: the fixed-point deconvolution engine, weight ROMs, the 3-pass
RGB scheduler, and the ULX3S board top."""
