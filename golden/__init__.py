"""golden/: the pure-NumPy side: dataset, neural-network layers, GAN training, metrics,
quantization and the bit-exact integer golden model of the hardware Generator."""
