"""The tiny CLIP: an open_clip `CLIP` from a custom config, saved as an open_clip `local-dir:`.

The saved folder holds `open_clip_config.json` (model and preprocess config), the weights as
`open_clip_model.safetensors`, the word-level tokenizer and a model card. It loads through the
normal API:

    model, _, preprocess = open_clip.create_model_and_transforms("local-dir:models/tiny-clip")
    tokenizer = open_clip.get_tokenizer("local-dir:models/tiny-clip")

Its image embedding is 32-d: the input the zk curation head (`zkml.shape.HeadShape`) reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from media.tokenizer import EOS_ID, PAD_ID

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
#: Normalisation of the tiny CLIP's inputs (pixel values in [0, 1]).
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class TinyClipShape:
    """Sizes of the tiny CLIP. The defaults are the shipped model's."""

    embed_dim: int = 32
    image_size: int = 32
    patch_size: int = 4
    vision_width: int = 128
    vision_layers: int = 4
    text_width: int = 128
    text_layers: int = 3
    heads: int = 4
    context_length: int = 20
    vocab_size: int = 64

    def model_cfg(self) -> dict[str, Any]:
        return {
            "embed_dim": self.embed_dim,
            "quick_gelu": False,
            "vision_cfg": {
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "width": self.vision_width,
                "layers": self.vision_layers,
                "head_width": self.vision_width // self.heads,
                "mlp_ratio": 2.0,
            },
            "text_cfg": {
                "context_length": self.context_length,
                "vocab_size": self.vocab_size,
                "width": self.text_width,
                "heads": self.heads,
                "layers": self.text_layers,
                "mlp_ratio": 2.0,
                "hf_tokenizer_name": "proofmint-words",
                "pool_type": "eos",
                "eos_id": EOS_ID,
                "pad_id": PAD_ID,
            },
        }

    def preprocess_cfg(self) -> dict[str, Any]:
        return {
            "size": [self.image_size, self.image_size],
            "mean": list(MEAN),
            "std": list(STD),
            "interpolation": "bicubic",
            "resize_mode": "squash",
        }


def build(shape: TinyClipShape, seed: int) -> torch.nn.Module:
    """A freshly initialised tiny CLIP (deterministic for a seed)."""
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    cfg = shape.model_cfg()
    model: torch.nn.Module = CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"], quick_gelu=cfg["quick_gelu"])
    return model


def save(model: torch.nn.Module, shape: TinyClipShape, folder: Path) -> None:
    """Writes config and weights (the tokenizer and card are written by the trainer)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": shape.model_cfg(), "preprocess_cfg": shape.preprocess_cfg()}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))


@dataclass
class LoadedClip:
    """An open_clip model with its preprocess and tokenizer, in eval mode."""

    model: Any
    preprocess: Any
    tokenizer: Any
    device: torch.device

    @torch.inference_mode()
    def encode_images(self, images: Sequence[Any]) -> torch.Tensor:
        """L2-normalised image embeddings of PIL images."""
        batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        return torch.nn.functional.normalize(self.model.encode_image(batch).float(), dim=-1)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised text embeddings."""
        tokens = self.tokenizer(list(texts)).to(self.device)
        return torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)


#: The name `register` gives the tiny CLIP's architecture in open_clip's model registry.
REGISTERED_NAME = "proofmint-tiny-clip"


def register(folder: Path, name: str = REGISTERED_NAME) -> tuple[str, Path]:
    """Registers a tiny-CLIP folder's architecture with open_clip under `name` and returns
    (name, weights file), so open_clip's usual call works:

        name, weights = register(Path("models/tiny-clip"))
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=str(weights), image_mean=(0.5,) * 3, image_std=(0.5,) * 3)
        tokenizer = open_clip.get_tokenizer(name)

    (open_clip takes normalisation for a checkpoint file from the call, not the model config;
    `local-dir:` carries it.) The config is written to a temporary file, with the tokenizer
    pointing at the folder, because open_clip registers configs from files.
    """
    import tempfile

    import open_clip

    folder = folder.resolve()
    config = json.loads((folder / CONFIG_FILE).read_text())["model_cfg"]
    config["text_cfg"] = {**config["text_cfg"], "hf_tokenizer_name": str(folder)}
    scratch = Path(tempfile.mkdtemp(prefix="proofmint-clip-"))
    (scratch / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(scratch / f"{name}.json")
    return name, folder / WEIGHTS_FILE


def load(model_name: str, device: str | torch.device = "cpu") -> LoadedClip:
    """Any open_clip model by name: `local-dir:PATH`, a built-in name with a local checkpoint
    given as `NAME@PATH`, or an `hf-hub:` id (which needs the model already in the local cache
    when `HF_HUB_OFFLINE=1`)."""
    import open_clip

    pretrained: str | None = None
    name = model_name
    if "@" in model_name and not model_name.startswith(("local-dir:", "hf-hub:")):
        name, pretrained = model_name.split("@", 1)
    if name.startswith("local-dir:") and not Path(name.removeprefix("local-dir:")).is_dir():
        raise FileNotFoundError(f"no open_clip model folder at {name.removeprefix('local-dir:')}")
    target = torch.device(device)
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=target)
    model.eval()
    return LoadedClip(model, preprocess, open_clip.get_tokenizer(name), target)


def zero_shot_top1(clip: LoadedClip, images: Sequence[Any], captions: Sequence[str], batch: int = 256) -> float:
    """Top-1 accuracy of matching each image to its caption among the set's distinct captions.

    An image counts as right when the caption it scores highest is its own text (two images
    with the same composition share one candidate).
    """
    candidates = sorted(set(captions))
    index = {c: i for i, c in enumerate(candidates)}
    texts = torch.cat([clip.encode_texts(candidates[i : i + batch]) for i in range(0, len(candidates), batch)])
    right = 0
    for start in range(0, len(images), batch):
        embeddings = clip.encode_images(images[start : start + batch])
        best = (embeddings @ texts.T).argmax(dim=-1).tolist()
        right += sum(b == index[c] for b, c in zip(best, captions[start : start + batch], strict=True))
    return right / len(images)
