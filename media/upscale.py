"""The tiny x2 upscaler: a second, decoupled stage that doubles the side of accepted base images.

One component, saved and loaded by diffusers as usual:
- `upscaler`: `TinyUpscaler`, a small residual conv net that predicts what bicubic upsampling
  misses: `output = clamp(bicubic_x2(image) + PixelShuffle(net(image)), 0, 1)`. It is fully
  convolutional, so any side from `MIN_SIDE` to `MAX_SIDE` works (trained on 32x32 -> 64x64).

    pipe = load_upscaler("models/tiny-upscaler")
    big = pipe(image).images[0]  # a 32x32 RGB image in, 64x64 out

Importing this module also lets diffusers' generic entry point load the folder
(`DiffusionPipeline.from_pretrained("models/tiny-upscaler")`, see `register_with_diffusers`).

Determinism (auditors re-run the upscaler to verify an asset):
- Promised: on CPU in float32 the same input gives bit-identical output (the PIL bytes and the
  float array) across calls, processes, torch thread counts and whatever else is in the call,
  on one torch build and one CPU instruction set, with torch's default CPU backend (oneDNN on,
  its float32 convolutions at full precision). Why it holds: every image goes through the
  network on its own (a batch of one, so its bytes cannot depend on its neighbours: torch picks
  the convolution kernel, and so the summation order, by the batch's shape); each convolution
  sums an output pixel's terms in an order fixed by the shapes, not by the thread count;
  bicubic, PixelShuffle and the clamp are elementwise. The pipeline refuses to run anywhere
  else: not float32 on CPU, oneDNN switched off or its convolutions at reduced precision
  (`DeterminismError`). `tests/media/test_upscale.py` checks calls, processes, threads and
  batches.
- Not promised: the same bytes on another torch version or another CPU instruction set (AVX2
  against AVX-512 may round float sums differently), or on a GPU. A verifier re-runs on the
  torch version the asset's record names, on a like CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from numpy.typing import NDArray
from PIL import Image
from torch import nn

#: The upscaling factor: an image of side n comes out with side 2n.
SCALE = 2
#: Smallest input side (width and height) the pipeline takes.
MIN_SIDE = 4
#: Largest input side the pipeline takes: it bounds one image's activations (about 130 MB of
#: float32 at 512x512 with the shipped 32 channels).
MAX_SIDE = 512
#: Most images one call takes (each runs on its own; the bound keeps one call's time bounded).
MAX_IMAGES = 1_024
#: Modes taken as they are or converted to RGB without loss of meaning: grey and palette images
#: (without a transparent colour). Alpha, transparency, bilevel, 16-bit, float and CMYK images are
#: refused: the conversion would silently decide how to flatten or rescale them.
ACCEPTED_MODES: frozenset[str] = frozenset({"RGB", "L", "P"})


class UpscaleError(ValueError):
    """The root of the upscaler's errors: the input or the model cannot be upscaled as asked."""


class UpscaleInputError(UpscaleError):
    """An input the pipeline refuses: not a PIL image, a mode that is not RGB-convertible, a side
    out of range, an empty list, an unknown output type."""


class DeterminismError(UpscaleError):
    """The upscaler is asked to run where its determinism is not promised: not float32 on CPU, or
    not on torch's default CPU backend."""


class _Residual(nn.Module):
    """conv 3x3, ReLU, conv 3x3, added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.conv2(F.relu(self.conv1(x)))
        return out


class TinyUpscaler(ModelMixin, ConfigMixin):  # type: ignore[misc]
    """x2 super-resolution as a diffusers model: a residual over bicubic upsampling.

    Pixels in [0, 1] (B, 3, H, W) in, (B, 3, 2H, 2W) out: conv 3x3 to `channels`, `blocks`
    residual blocks at the input's resolution (and a skip around them all), conv 3x3 to 3 * 4
    channels, PixelShuffle x2, added to bicubic x2 (torch's, a = -0.75), clamped to [0, 1]. The
    last conv starts at zero, so an untrained model is exactly bicubic.
    """

    @register_to_config  # type: ignore[untyped-decorator]
    def __init__(self, channels: int = 32, blocks: int = 4) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.Sequential(*(_Residual(channels) for _ in range(blocks)))
        self.tail = nn.Conv2d(channels, 3 * SCALE * SCALE, 3, padding=1)
        self.shuffle = nn.PixelShuffle(SCALE)
        for parameter in self.tail.parameters():
            nn.init.zeros_(parameter)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] to (B, 3, 2H, 2W) in [0, 1]."""
        return self.unclamped(pixels).clamp(0.0, 1.0)

    def unclamped(self, pixels: torch.Tensor) -> torch.Tensor:
        """The output before the clamp to [0, 1] (what training fits: the clamp has no gradient
        where bicubic overshoots)."""
        features = self.head(pixels)
        residual = self.shuffle(self.tail(self.body(features) + features))
        out: torch.Tensor = bicubic(pixels) + residual
        return out


def bicubic(pixels: torch.Tensor) -> torch.Tensor:
    """Bicubic x2 of a (B, 3, H, W) batch in [0, 1], clamped to [0, 1]: the upscaler's base and
    the baseline its figures are measured against."""
    return F.interpolate(pixels, scale_factor=SCALE, mode="bicubic", align_corners=False).clamp(0.0, 1.0)


def build_upscaler(channels: int = 32, blocks: int = 4, seed: int = 0) -> TinyUpscaler:
    """A fresh upscaler (exactly bicubic until trained), its initial weights fixed by `seed`."""
    torch.manual_seed(seed)
    model: TinyUpscaler = TinyUpscaler(channels=channels, blocks=blocks)
    return model


def to_pixels(images: Sequence[Image.Image]) -> torch.Tensor:
    """Same-size RGB PIL images to a (B, 3, H, W) float32 batch in [0, 1]."""
    array = np.stack([np.asarray(image, dtype=np.uint8) for image in images]).astype(np.float32) / 255.0
    return torch.from_numpy(array).permute(0, 3, 1, 2)


def to_uint8(pixels: torch.Tensor) -> NDArray[np.uint8]:
    """A (B, 3, H, W) batch in [0, 1] to (B, H, W, 3) uint8, rounding as diffusers' `numpy_to_pil`."""
    array = pixels.permute(0, 2, 3, 1).numpy()
    return (array * 255).round().astype(np.uint8)


def _backend_problem() -> str | None:
    """What in torch's CPU backend settings differs from the defaults the output is pinned to."""
    mkldnn = torch.backends.mkldnn
    if mkldnn.is_available() and not mkldnn.enabled:  # type: ignore[no-untyped-call]
        return "oneDNN is switched off (torch.backends.mkldnn.enabled = False)"
    precision = getattr(getattr(mkldnn, "conv", None), "fp32_precision", "none")
    if precision not in ("none", "ieee"):
        return f"oneDNN's float32 convolutions run at {precision!r} precision"
    return None


def check_images(image: Any) -> list[Image.Image]:
    """The input as a list of RGB images, or `UpscaleInputError` saying what is wrong with it."""
    images = list(image) if isinstance(image, list | tuple) else [image]
    if not images:
        raise UpscaleInputError("no images to upscale: pass a PIL image or a non-empty list of them")
    if len(images) > MAX_IMAGES:
        raise UpscaleInputError(f"{len(images)} images in one call; at most {MAX_IMAGES}: split the list")
    converted = []
    for index, item in enumerate(images):
        where = f"image {index}" if isinstance(image, list | tuple) else "the image"
        if not isinstance(item, Image.Image):
            raise UpscaleInputError(f"{where} is a {type(item).__name__}, not a PIL image: open it with PIL.Image.open")
        if item.mode not in ACCEPTED_MODES or "transparency" in item.info:
            kind = f"{item.mode} with transparency" if item.mode in ACCEPTED_MODES else item.mode
            raise UpscaleInputError(
                f"{where} has mode {kind!r}; the upscaler takes RGB (or L or P, without transparency):"
                " flatten or convert it to RGB first"
            )
        width, height = item.size
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise UpscaleInputError(
                f"{where} is {width}x{height}; each side must be between {MIN_SIDE} and {MAX_SIDE} pixels"
            )
        converted.append(item if item.mode == "RGB" else item.convert("RGB"))
    return converted


class TinyUpscalePipeline(DiffusionPipeline):  # type: ignore[misc]
    """x2 upscaling of RGB images with a `TinyUpscaler`; deterministic on CPU (module docstring).

    `__call__(image, output_type="pil" | "np", return_dict=True)`: one PIL image or a list of
    them (sides may differ between images) to images of twice the side.
    """

    model_cpu_offload_seq = "upscaler"

    def __init__(self, upscaler: TinyUpscaler) -> None:
        super().__init__()
        self.register_modules(upscaler=upscaler)

    def check_model(self) -> None:
        """`DeterminismError` unless the upscaler runs where its output is reproducible: float32
        on CPU, with oneDNN on (where torch has it) and its convolutions at full precision."""
        device, dtype = self.upscaler.device, self.upscaler.dtype
        if device.type != "cpu" or dtype != torch.float32:
            raise DeterminismError(
                f"the upscaler is {dtype} on {device}; its output is reproducible in float32 on CPU only:"
                " use pipe.to('cpu', torch.float32)"
            )
        problem = _backend_problem()
        if problem:
            raise DeterminismError(f"{problem}; the upscaler's output is reproducible on torch's default CPU backend")

    @overload
    def __call__(
        self,
        image: Image.Image | list[Image.Image],
        output_type: str = ...,
        return_dict: Literal[True] = ...,
    ) -> ImagePipelineOutput: ...

    @overload
    def __call__(
        self,
        image: Image.Image | list[Image.Image],
        output_type: str = ...,
        *,
        return_dict: Literal[False],
    ) -> tuple[Any]: ...

    def __call__(
        self,
        image: Image.Image | list[Image.Image],
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple[Any]:
        """Each image upscaled x2.

        `output_type`: "pil" (RGB PIL images) or "np" (float32 arrays (2H, 2W, 3) in [0, 1]:
        one array (N, 2H, 2W, 3) when every image has the same size, else a list of arrays).
        `return_dict`: an `ImagePipelineOutput` when True, else the tuple `(images,)`.
        """
        if output_type not in ("pil", "np"):
            raise UpscaleInputError(f"output_type must be 'pil' or 'np', not {output_type!r}")
        images = check_images(image)
        self.check_model()
        self.upscaler.eval()
        arrays: list[NDArray[np.float32]] = []
        with torch.no_grad():
            for item in images:
                out = self.upscaler(to_pixels([item]))
                arrays.append(out.permute(0, 2, 3, 1).numpy()[0])
        result: Any
        if output_type == "pil":
            result = [Image.fromarray((a * 255).round().astype(np.uint8)) for a in arrays]
        else:
            result = np.stack(arrays) if len({a.shape for a in arrays}) == 1 else arrays
        if not return_dict:
            return (result,)
        return ImagePipelineOutput(images=result)


def load_upscaler(path: str | Path) -> TinyUpscalePipeline:
    """The upscale pipeline saved in a local folder (on CPU in float32, as saved), ready to call.

    Local folders only: a name that is not a folder is refused, never looked up on a hub.
    """
    folder = Path(path)
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(
            f"no upscaler folder at {folder} (no model_index.json): `make train-upscaler` writes one"
        )
    pipe: TinyUpscalePipeline = TinyUpscalePipeline.from_pretrained(
        str(folder), local_files_only=True, low_cpu_mem_usage=False
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def register_with_diffusers() -> None:
    """Makes `DiffusionPipeline.from_pretrained(folder)` load a folder saved by this pipeline
    (diffusers looks `_class_name` up in its own package; see `media.t2i.register_with_diffusers`
    for why that, and not a `pipeline.py` with `trust_remote_code`)."""
    import diffusers

    setattr(diffusers, TinyUpscalePipeline.__name__, TinyUpscalePipeline)


register_with_diffusers()
