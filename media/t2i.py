"""The tiny text-to-image model: a diffusers pipeline in pixel space, conditioned on the tiny CLIP.

Components, each saved and loaded by diffusers / transformers as usual:
- `unet`: `UNet2DConditionModel` over 32x32 RGB, cross-attending to the text tokens;
- `scheduler`: `DDIMScheduler` (any diffusers scheduler with the same interface can replace it);
- `text_encoder`: `TinyClipTextEncoder`, the tiny CLIP's text tower (its per-token outputs);
- `tokenizer`: the tiny CLIP's word-level `PreTrainedTokenizerFast`.

    pipe = TinyText2ImagePipeline.from_pretrained("models/tiny-t2i")
    image = pipe("a large red circle on the left over a plain black background",
                 generator=torch.Generator().manual_seed(1)).images[0]

Importing this module also lets diffusers' generic entry point load the folder
(`DiffusionPipeline.from_pretrained("models/tiny-t2i")`, see `register_with_diffusers`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, overload

import torch
from diffusers import DDIMScheduler, DiffusionPipeline, ImagePipelineOutput, UNet2DConditionModel
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils.torch_utils import randn_tensor

from media.clip import CONFIG_FILE, WEIGHTS_FILE

#: A step-end callback: `(pipe, step, timestep, callback_kwargs) -> callback_kwargs`.
StepEndCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]

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
    """Text-to-image in pixel space with classifier-free guidance.

    Its `__call__` follows diffusers' pipelines (`StableDiffusionPipeline`): `height` and `width`
    (default: the UNet's sample size; multiples of `unet_scale_factor`), `return_dict`, and
    `callback_on_step_end(pipe, step, timestep, callback_kwargs)` called after every denoising
    step with the tensors `callback_on_step_end_tensor_inputs` names (any of
    `_callback_tensor_inputs`; a `PipelineCallback` or `MultiPipelineCallbacks` brings its own
    list): the dict it returns replaces those tensors, and setting `pipe._interrupt = True` skips
    the remaining steps. There is no VAE: `latents` are the image's pixels in [-1, 1].
    """

    model_cpu_offload_seq = "text_encoder->unet"
    #: Tensors a step-end callback may read and replace: the sample, the per-token text features
    #: (under guidance the negative prompts' then the prompts', as in StableDiffusionPipeline)
    #: and the pooled text embeddings (likewise).
    _callback_tensor_inputs: ClassVar[list[str]] = ["latents", "prompt_embeds", "pooled_prompt_embeds"]

    def __init__(
        self, unet: UNet2DConditionModel, scheduler: Any, text_encoder: TinyClipTextEncoder, tokenizer: Any
    ) -> None:
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer)
        self._interrupt = False
        self._num_timesteps = 0

    @property
    def unet_scale_factor(self) -> int:
        """How many times smaller the UNet's innermost feature map is than the image."""
        return int(2 ** (len(self.unet.config.block_out_channels) - 1))

    @property
    def default_size(self) -> tuple[int, int]:
        """(height, width) when the call names none: the UNet's sample size."""
        size = self.unet.config.sample_size
        return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))

    @property
    def num_timesteps(self) -> int:
        """Denoising steps of the current (or last) call."""
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        """Set by a step-end callback (`pipe._interrupt = True`) to skip the remaining steps."""
        return self._interrupt

    def encode_prompt(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled embedding and per-token features of each prompt."""
        tokens = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(self._execution_device)
        pooled, features = self.text_encoder(tokens)
        return pooled.to(self.unet.dtype), features.to(self.unet.dtype)

    def check_inputs(
        self, height: Any, width: Any, output_type: str, callback_on_step_end_tensor_inputs: list[str]
    ) -> None:
        """ValueError for a size the UNet cannot take, an unknown output type or callback tensor."""
        factor = self.unet_scale_factor
        if not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 and n % factor == 0 for n in (height, width)
        ):
            raise ValueError(
                f"`height` and `width` have to be positive multiples of {factor} (the UNet halves the image "
                f"{factor.bit_length() - 1} times) but are {height!r} and {width!r}."
            )
        if output_type not in ("pil", "np"):
            raise ValueError(f"output_type must be 'pil' or 'np', not {output_type!r}")
        unknown = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` has to be in {self._callback_tensor_inputs}, but found {unknown}"
            )

    @overload
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = ...,
        num_inference_steps: int = ...,
        guidance_scale: float = ...,
        num_images_per_prompt: int = ...,
        generator: torch.Generator | list[torch.Generator] | None = ...,
        output_type: str = ...,
        *,
        height: int | None = ...,
        width: int | None = ...,
        return_dict: Literal[True] = ...,
        callback_on_step_end: StepEndCallback | PipelineCallback | MultiPipelineCallbacks | None = ...,
        callback_on_step_end_tensor_inputs: list[str] | None = ...,
    ) -> ImagePipelineOutput: ...

    @overload
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = ...,
        num_inference_steps: int = ...,
        guidance_scale: float = ...,
        num_images_per_prompt: int = ...,
        generator: torch.Generator | list[torch.Generator] | None = ...,
        output_type: str = ...,
        *,
        height: int | None = ...,
        width: int | None = ...,
        return_dict: Literal[False],
        callback_on_step_end: StepEndCallback | PipelineCallback | MultiPipelineCallbacks | None = ...,
        callback_on_step_end_tensor_inputs: list[str] | None = ...,
    ) -> tuple[Any]: ...

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
        *,
        height: int | None = None,
        width: int | None = None,
        return_dict: bool = True,
        callback_on_step_end: StepEndCallback | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> ImagePipelineOutput | tuple[Any]:
        """Images for `prompt` (each `num_images_per_prompt` times), `height` x `width` pixels.

        `output_type`: "pil" (PIL images) or "np" (an array (N, H, W, 3) in [0, 1]).
        `return_dict`: an `ImagePipelineOutput` when True, else the tuple `(images,)`.
        `callback_on_step_end_tensor_inputs`: default `["latents"]`.
        """
        if isinstance(callback_on_step_end, PipelineCallback | MultiPipelineCallbacks):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        tensor_inputs = (
            ["latents"] if callback_on_step_end_tensor_inputs is None else callback_on_step_end_tensor_inputs
        )
        default_height, default_width = self.default_size
        height = default_height if height is None else height
        width = default_width if width is None else width
        self.check_inputs(height, width, output_type, tensor_inputs)

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
        device = self._execution_device
        guided = guidance_scale > 1.0
        pooled_prompt_embeds, prompt_embeds = self.encode_prompt(negatives + prompts if guided else prompts)
        shape = (len(prompts), self.unet.config.in_channels, height, width)
        latents = randn_tensor(shape, generator=generator, device=device, dtype=self.unet.dtype)
        latents = latents * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        self._interrupt = False
        for index, t in enumerate(self.progress_bar(timesteps)):
            if self.interrupt:
                continue
            model_input = torch.cat([latents, latents]) if guided else latents
            model_input = self.scheduler.scale_model_input(model_input, t)
            noise = self.unet(
                model_input, t, encoder_hidden_states=prompt_embeds, class_labels=pooled_prompt_embeds
            ).sample
            if guided:
                unconditional, conditional = noise.chunk(2)
                noise = unconditional + guidance_scale * (conditional - unconditional)
            latents = self.scheduler.step(noise, t, latents, generator=generator).prev_sample
            if callback_on_step_end is not None:
                tensors = {
                    "latents": latents,
                    "prompt_embeds": prompt_embeds,
                    "pooled_prompt_embeds": pooled_prompt_embeds,
                }
                outputs = callback_on_step_end(self, index, t, {k: tensors[k] for k in tensor_inputs})
                if not isinstance(outputs, dict):
                    raise TypeError(
                        f"callback_on_step_end must return its callback_kwargs dict, not {type(outputs).__name__}"
                    )
                latents = outputs.pop("latents", latents)
                prompt_embeds = outputs.pop("prompt_embeds", prompt_embeds)
                pooled_prompt_embeds = outputs.pop("pooled_prompt_embeds", pooled_prompt_embeds)
        array = (latents / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
        images = self.numpy_to_pil(array) if output_type == "pil" else array
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)


def register_with_diffusers() -> None:
    """Makes `DiffusionPipeline.from_pretrained(folder)` load a folder saved by this pipeline.

    diffusers looks the model_index.json `_class_name` up as an attribute of the `diffusers`
    package and has no registry for pipelines defined elsewhere. Its one mechanism for those, a
    `pipeline.py` in the model folder named by `_class_name: ["pipeline", "<class>"]`, runs only
    with `trust_remote_code=True` (in diffusers 0.39 for a local folder too, and then for
    `TinyText2ImagePipeline.from_pretrained` as well), copies the file into
    `~/.cache/huggingface/modules`, and would change the folder's registered weights digest.
    So the class is put where diffusers looks, once this module is imported (which loading the
    folder needs anyway: its text encoder component is `media.t2i.TinyClipTextEncoder`).
    """
    import diffusers

    setattr(diffusers, TinyText2ImagePipeline.__name__, TinyText2ImagePipeline)


register_with_diffusers()
