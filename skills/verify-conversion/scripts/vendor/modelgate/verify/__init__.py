"""verify-conversion: convert (optionally) and verify one model on OpenVINO against its source."""
