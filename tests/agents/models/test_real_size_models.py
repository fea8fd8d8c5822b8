"""The stages on real-size architectures, with random weights built here (nothing downloaded).

- Stable Diffusion's pipeline: `StableDiffusionPipeline` of a `UNet2DConditionModel` over
  `AutoencoderKL` latents, a transformers `CLIPTextModel` and CLIP's own BPE tokenizer (its 49,408
  tokens rebuilt from the merges file open_clip ships), at reduced widths so it runs in seconds;
- open_clip's `ViT-B-32` at full size (151 M parameters), loaded from a saved checkpoint.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from agents.core.requests import GenerationRequest
from agents.models.curator import CurationItem, CurationPolicy, Curator
from agents.models.generator import Generator

pytestmark = pytest.mark.slow


def clip_bpe_tokenizer(folder: Path):  # type: ignore[no-untyped-def]
    """CLIP's BPE tokenizer as transformers `CLIPTokenizer`, from open_clip's bundled merges."""
    from open_clip.tokenizer import bytes_to_unicode, default_bpe
    from transformers import CLIPTokenizer

    with gzip.open(default_bpe()) as handle:
        merges = handle.read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    alphabet = list(bytes_to_unicode().values())
    vocab = alphabet + [c + "</w>" for c in alphabet] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<|endoftext|>", model_max_length=77
    )


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory) -> Path:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = tmp_path_factory.mktemp("sd")
    tokenizer = clip_bpe_tokenizer(root / "bpe")
    assert len(tokenizer) == 49_408
    from open_clip.tokenizer import SimpleTokenizer

    ids = tokenizer("a watercolour fox in the snow").input_ids
    assert ids == SimpleTokenizer()("a watercolour fox in the snow")[0][: len(ids)].tolist(), "CLIP's own BPE ids"
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32, 32, 32, 32),
        latent_channels=4,
        norm_num_groups=32,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49_408,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=49_406,
            eos_token_id=49_407,
            pad_token_id=49_407,
        )
    )
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    folder = root / "sd"
    pipe.save_pretrained(str(folder))
    return folder


@pytest.mark.asyncio
async def test_generator_runs_a_stable_diffusion_pipeline_deterministically(sd_folder):
    generator = await Generator.load(str(sd_folder), device="cpu", batch=2)
    try:
        request = GenerationRequest("a watercolour fox in the snow", seed=3, steps=2, guidance=5.0, height=64, width=64)
        first, other = await generator.generate(
            [request, GenerationRequest(request.prompt, seed=4, steps=2, guidance=5.0, height=64, width=64)]
        )
        (again,) = await generator.generate([request])
    finally:
        generator.close()
    assert first.digest == again.digest != other.digest
    assert first.lineage.pipeline == "StableDiffusionPipeline"
    assert first.lineage.scheduler == "DDIMScheduler"
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(first.png)).size == (64, 64)


@pytest.mark.asyncio
async def test_curator_runs_open_clip_vit_b_32(tmp_path):
    import open_clip
    from safetensors.torch import save_file

    from media.dataset import examples

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32")
    assert sum(p.numel() for p in model.parameters()) > 150_000_000
    checkpoint = tmp_path / "vit-b-32.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(checkpoint))
    del model
    held = list(examples("test", 8, 3))
    # Random weights put every embedding near every other, so moderation would flag at random:
    # its thresholds are out of reach here (the concept is still embedded by the model).
    policy = CurationPolicy(
        accept_at=-1.0, review_at=-1.0, blocked=("a weapon",), image_moderation_at=1.0, prompt_moderation_at=1.0
    )
    curator = await Curator.load(f"ViT-B-32@{checkpoint}", policy)
    try:
        verdicts = await curator.curate([CurationItem(f"{i:064x}", e.image, e.caption) for i, e in enumerate(held)])
        again = await curator.curate([CurationItem("f" * 64, held[0].image, held[0].caption)])
    finally:
        curator.close()
    assert [len(v.embedding) for v in verdicts] == [512, 512, 512]
    assert [v.decision.value for v in verdicts] == ["accept"] * 3 and not any(v.flags for v in verdicts)
    assert again[0].duplicate_of == f"{0:064x}", "the same image again is a copy of the first"
