"""The HTTP API: assets, content, models, licence terms and pay-per-use (x402) for licensees."""
