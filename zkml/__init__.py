"""proofmint zkml: provable models, ONNX export and the EZKL pipeline (settings, keys, proofs, verifiers)."""

__version__ = "0.1.0"
