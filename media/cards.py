"""Model cards: a README.md in each trained folder (data, seed, steps, metrics, how to rebuild)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from media.dataset import TEST_ONE_IN, all_compositions, compositions

DATA = (
    "Procedural generative-art compositions from `media/dataset.py`: 1-3 shapes (circle, square, triangle) of one"
    " of 8 colours and 2 sizes, grouped on the left, right, top, bottom or centre, over a plain, striped or dotted"
    f" black, gray or navy background; {len(all_compositions()):,} compositions, each with one caption."
    f" One composition in {TEST_ONE_IN} (by caption hash; {len(compositions('test')):,}) is held out of training"
    " and used for every metric below, so the metrics are on prompts and images the model never saw."
)


def write_card(
    folder: Path,
    *,
    title: str,
    summary: str,
    usage: str,
    command: str,
    parameters: int,
    training: dict[str, Any],
    history: list[dict[str, float]],
    metrics: dict[str, Any],
) -> None:
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.suffix in {".safetensors"})
    lines = [
        "---",
        "license: mit",
        "library_name: " + ("open_clip" if "open_clip" in usage else "diffusers"),
        "---",
        f"# {title}",
        "",
        summary,
        "",
        "## Use",
        "",
        "```python",
        usage.strip(),
        "```",
        "",
        "## Data",
        "",
        DATA,
        "",
        "## Training",
        "",
        f"Rebuild with `{command}` (CPU; the data stream, initialisation and batch order follow from the seed).",
        "",
        f"- parameters: {parameters:,}; weights {size / 1e6:.1f} MB (safetensors, float32)",
        *(f"- {k}: {v}" for k, v in training.items()),
        "",
        "## Metrics (held-out split)",
        "",
        *(f"- {k}: {v:.4f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in metrics.items()),
        "",
        "| step | loss | " + " | ".join(k for k in history[0] if k not in {"step", "loss"}) + " |",
        "| --- | --- | " + " | ".join("---" for k in history[0] if k not in {"step", "loss"}) + " |",
        *(
            f"| {int(h['step'])} | {h['loss']:.4f} | "
            + " | ".join(f"{v:.3f}" for k, v in h.items() if k not in {"step", "loss"})
            + " |"
            for h in history
        ),
        "",
    ]
    (folder / "README.md").write_text("\n".join(lines))
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
