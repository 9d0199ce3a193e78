"""The parts that run models: convert, infer, compare, quantize, evaluate (OpenVINO runtime)."""
