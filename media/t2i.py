"""The tiny text-to-image model: a diffusers pipeline in pixel space, conditioned on the tiny CLIP.

Components, each saved and loaded by diffusers / transformers as usual:
- `unet`: `UNet2DConditionModel` over 32x32 RGB, cross-attending to the text tokens;
- `scheduler`: `DDIMScheduler` (any diffusers scheduler with the same interface can replace it);
- `text_encoder`: `TinyClipTextEncoder`, the tiny CLIP's text tower (its per-token outputs);
- `tokenizer`: the tiny CLIP's word-level `PreTrainedTokenizerFast`.

    pipe = TinyText2ImagePipeline.from_pretrained("models/tiny-t2i")
    image = pipe("a large red circle on the left over a plain black background",
                 generator=torch.Generator().manual_seed(1)).images[0]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from diffusers import DDIMScheduler, DiffusionPipeline, ImagePipelineOutput, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils.torch_utils import randn_tensor

from media.clip import CONFIG_FILE, WEIGHTS_FILE

#: State-dict prefixes of the text tower inside an open_clip `CLIP`.
_TEXT_KEYS = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")


class TinyClipTextEncoder(ModelMixin, ConfigMixin):  # type: ignore[misc]
    """An open_clip text tower as a diffusers model: token ids in, per-token features out."""

    @register_to_config  # type: ignore[untyped-decorator]
    def __init__(self, embed_dim: int = 32, text_cfg: dict[str, Any] | None = None) -> None:
        from open_clip.model import _build_text_tower

        super().__init__()
        cfg = {**(text_cfg or {}), "output_tokens": True}
        self.text = _build_text_tower(embed_dim, cfg)

    @property
    def width(self) -> int:
        return int(self.text.width)

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) token ids to the pooled, projected embedding (B, embed_dim) (the tiny CLIP's
        text embedding, unnormalised) and the per-token features (B, L, width)."""
        pooled, tokens = self.text(input_ids)
        return pooled, tokens

    @classmethod
    def from_open_clip(cls, folder: Path) -> TinyClipTextEncoder:
        """The text tower of a tiny-CLIP folder (see `media.clip`), with its trained weights."""
        from safetensors.torch import load_file

        config = json.loads((folder / CONFIG_FILE).read_text())["model_cfg"]
        encoder: TinyClipTextEncoder = cls(embed_dim=config["embed_dim"], text_cfg=config["text_cfg"])
        state = {k: v for k, v in load_file(str(folder / WEIGHTS_FILE)).items() if k.startswith(_TEXT_KEYS)}
        missing, unexpected = encoder.text.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if k != "attn_mask"]:
            raise ValueError(f"text tower mismatch: missing {missing}, unexpected {unexpected}")
        return encoder


def build_unet(text_width: int, embed_dim: int, sample_size: int = 32, seed: int = 0) -> UNet2DConditionModel:
    """The tiny UNet: 32, 48, 64 channels at 32, 16 and 8 pixels; cross-attention to the text
    tokens at 8 pixels (and in the middle block); the pooled text embedding is added to the
    timestep embedding, so every level sees the whole prompt."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(32, 48, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=text_width,
        attention_head_dim=16,
        norm_num_groups=16,
        class_embed_type="projection",
        projection_class_embeddings_input_dim=embed_dim,
    )


def build_scheduler() -> DDIMScheduler:
    """DDIM over a cosine schedule rescaled to zero terminal SNR, the UNet predicting v.

    With epsilon prediction and a schedule whose last step still holds some signal, the sampler
    never learns an image's overall colour: backgrounds drift (olive for black, pink for gray).
    At zero terminal SNR the first sampling step sees pure noise and its v target is the clean
    image itself, so the global colour is learnt like everything else (Lin et al. 2024,
    "Common Diffusion Noise Schedules and Sample Steps are Flawed"); trailing timestep spacing
    makes sampling start at that last step.
    """
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
        clip_sample=True,
        set_alpha_to_one=True,
    )


class TinyText2ImagePipeline(DiffusionPipeline):  # type: ignore[misc]
    """Text-to-image in pixel space with classifier-free guidance."""

    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(
        self, unet: UNet2DConditionModel, scheduler: Any, text_encoder: TinyClipTextEncoder, tokenizer: Any
    ) -> None:
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer)

    def encode_prompt(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled embedding and per-token features of each prompt."""
        tokens = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(self.device)
        pooled, features = self.text_encoder(tokens)
        return pooled.to(self.unet.dtype), features.to(self.unet.dtype)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 1.5,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        callback_on_step_end: Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> ImagePipelineOutput:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        prompts = [p for p in prompts for _ in range(num_images_per_prompt)]
        if negative_prompt is None:
            negatives = [""] * len(prompts)
        elif isinstance(negative_prompt, str):
            negatives = [negative_prompt] * len(prompts)
        else:
            negatives = [n for n in negative_prompt for _ in range(num_images_per_prompt)]
        if len(negatives) != len(prompts):
            raise ValueError(f"{len(negatives)} negative prompts for {len(prompts)} prompts")
        guided = guidance_scale > 1.0
        pooled, context = self.encode_prompt(negatives + prompts) if guided else self.encode_prompt(prompts)
        size = self.unet.config.sample_size
        shape = (len(prompts), self.unet.config.in_channels, size, size)
        sample = randn_tensor(shape, generator=generator, device=self.device, dtype=self.unet.dtype)
        sample = sample * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        for index, t in enumerate(self.progress_bar(self.scheduler.timesteps)):
            model_input = torch.cat([sample, sample]) if guided else sample
            model_input = self.scheduler.scale_model_input(model_input, t)
            noise = self.unet(model_input, t, encoder_hidden_states=context, class_labels=pooled).sample
            if guided:
                unconditional, conditional = noise.chunk(2)
                noise = unconditional + guidance_scale * (conditional - unconditional)
            sample = self.scheduler.step(noise, t, sample, generator=generator).prev_sample
            if callback_on_step_end is not None:
                callback_on_step_end(self, index, t, {"latents": sample})
        images = (sample / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
        if output_type == "pil":
            return ImagePipelineOutput(images=self.numpy_to_pil(images))
        if output_type == "np":
            return ImagePipelineOutput(images=images)
        raise ValueError(f"output_type must be 'pil' or 'np', not {output_type!r}")
