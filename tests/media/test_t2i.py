"""`TinyText2ImagePipeline` keeps diffusers' pipeline conventions: sizes, `return_dict`, step-end
callbacks, and loading through the generic `DiffusionPipeline.from_pretrained`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from diffusers.callbacks import PipelineCallback

from media.t2i import TinyText2ImagePipeline

ROOT = Path(__file__).resolve().parents[2]
TINY_T2I = ROOT / "models" / "tiny-t2i"
PROMPT = "a large red circle on the left over a plain black background"
STEPS = 3


@pytest.fixture(scope="module")
def pipe() -> TinyText2ImagePipeline:
    loaded = TinyText2ImagePipeline.from_pretrained(str(TINY_T2I))
    loaded.set_progress_bar_config(disable=True)
    return loaded


def run(pipe: Any, seed: int = 1, **options: Any) -> Any:
    """The pipeline's images as one array (N, H, W, 3), for a fixed prompt, seed and step count."""
    options.setdefault("output_type", "np")
    return pipe(PROMPT, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(seed), **options).images


def test_height_and_width_default_to_the_unet_sample_size_and_set_the_image_size(pipe):
    assert pipe.default_size == (32, 32) and pipe.unet_scale_factor == 4
    assert run(pipe).shape == (1, 32, 32, 3)
    assert np.array_equal(run(pipe), run(pipe, height=32, width=32))
    assert run(pipe, height=64, width=64).shape == (1, 64, 64, 3)
    wide = run(pipe, height=32, width=64, output_type="pil")
    assert wide[0].size == (64, 32)  # PIL sizes are (width, height)


@pytest.mark.parametrize("size", [30, 0, -32, 33.0, True])
def test_a_size_the_unet_cannot_take_is_a_clear_error(pipe, size):
    with pytest.raises(ValueError, match=r"`height` and `width` have to be positive multiples of 4"):
        run(pipe, height=size)
    with pytest.raises(ValueError, match=r"positive multiples of 4"):
        run(pipe, width=size)


def test_return_dict_false_gives_the_tuple_diffusers_pipelines_give(pipe):
    output = pipe(PROMPT, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(1), return_dict=False)
    assert isinstance(output, tuple) and len(output) == 1
    assert [image.tobytes() for image in output[0]] == [image.tobytes() for image in run(pipe, output_type="pil")]


def test_the_step_end_callback_runs_after_every_step_with_the_tensors_it_asked_for(pipe):
    seen: list[tuple[int, int, list[str], list[tuple[int, ...]]]] = []

    def record(p: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        assert p is pipe
        seen.append((step, int(timestep), sorted(kwargs), [tuple(t.shape) for _, t in sorted(kwargs.items())]))
        return kwargs

    watched = run(
        pipe,
        guidance_scale=1.5,
        callback_on_step_end=record,
        callback_on_step_end_tensor_inputs=["latents", "prompt_embeds", "pooled_prompt_embeds"],
    )
    assert [s[0] for s in seen] == list(range(STEPS)) == list(range(pipe.num_timesteps))
    assert [s[1] for s in seen] == [int(t) for t in pipe.scheduler.timesteps]
    names, shapes = seen[0][2], seen[0][3]
    assert names == ["latents", "pooled_prompt_embeds", "prompt_embeds"]
    # under guidance the text tensors hold the negative prompt's row, then the prompt's
    assert shapes[0] == (1, 3, 32, 32) and shapes[1][0] == 2 and shapes[2][0] == 2
    assert np.array_equal(watched, run(pipe, guidance_scale=1.5)), "returning the kwargs unchanged changes nothing"

    seen.clear()
    run(pipe, callback_on_step_end=record)
    assert [s[2] for s in seen] == [["latents"]] * STEPS, "latents only, by default"


def test_the_latents_a_step_end_callback_returns_replace_the_sample(pipe):
    def grey_at_the_end(p: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if step == p.num_timesteps - 1:
            kwargs["latents"] = torch.zeros_like(kwargs["latents"])
        return kwargs

    assert np.all(run(pipe, callback_on_step_end=grey_at_the_end) == 0.5), "pixel 0 in [-1, 1] is grey"

    def mirrored_first(p: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"latents": kwargs["latents"].flip(-1)} if step == 0 else kwargs

    assert not np.array_equal(run(pipe, callback_on_step_end=mirrored_first), run(pipe))


def test_a_callback_object_brings_its_tensor_inputs_and_may_interrupt(pipe):
    class Pooled(PipelineCallback):  # type: ignore[misc]
        tensor_inputs = ["pooled_prompt_embeds"]  # noqa: RUF012 (diffusers' own callbacks declare it so)

        def __init__(self) -> None:
            super().__init__()
            self.calls: list[list[str]] = []

        def callback_fn(self, p: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            self.calls.append(sorted(kwargs))
            p._interrupt = True  # diffusers' way to end the loop early
            return kwargs

    callback = Pooled()
    stopped = run(pipe, callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents"])
    assert callback.calls == [["pooled_prompt_embeds"]], "one step ran; the object's inputs win"
    assert pipe.interrupt and stopped.shape == (1, 32, 32, 3)
    full = run(pipe)
    assert not pipe.interrupt, "the next call starts afresh"
    assert not np.array_equal(stopped, full)


def test_bad_step_end_callbacks_are_clear_errors(pipe):
    with pytest.raises(ValueError, match=r"has to be in \['latents', 'prompt_embeds', 'pooled_prompt_embeds'\]"):
        run(pipe, callback_on_step_end=lambda p, i, t, kw: kw, callback_on_step_end_tensor_inputs=["noise"])
    with pytest.raises(TypeError, match="must return its callback_kwargs dict, not NoneType"):
        run(pipe, callback_on_step_end=lambda p, i, t, kw: None)


def test_the_generic_diffusion_pipeline_loads_the_shipped_folder_as_the_tiny_pipeline(pipe):
    generic = DiffusionPipeline.from_pretrained(str(TINY_T2I))
    generic.set_progress_bar_config(disable=True)
    assert type(generic) is TinyText2ImagePipeline
    assert type(generic.text_encoder) is type(pipe.text_encoder)
    assert type(generic.scheduler) is type(pipe.scheduler)
    first = run(generic, output_type="pil")[0]
    assert first.tobytes() == run(pipe, output_type="pil")[0].tobytes()
    assert np.array_equal(run(generic, seed=2, height=64, width=64), run(pipe, seed=2, height=64, width=64))
