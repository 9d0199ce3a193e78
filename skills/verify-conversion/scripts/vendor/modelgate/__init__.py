"""modelgate: decide whether a converted, quantized or released model can be trusted."""
__version__ = "0.1.0"
