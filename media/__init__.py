"""Proofmint's own small models: the procedural dataset, the pixel judge, the tiny CLIP and the
tiny text-to-image pipeline, with their training scripts. The trained folders live in `models/`."""
