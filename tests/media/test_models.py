"""The shipped tiny CLIP and the tiny text-to-image pipeline, through the libraries' own APIs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch

from media.clip import TinyClipShape, load, zero_shot_top1
from media.dataset import examples
from media.t2i import TinyClipTextEncoder, TinyText2ImagePipeline, build_scheduler, build_unet
from media.train_clip import ClipTraining, one_attribute_changed
from media.train_clip import train as train_clip
from media.train_t2i import T2ITraining, attribute_accuracy
from media.train_t2i import train as train_t2i

ROOT = Path(__file__).resolve().parents[2]
TINY_CLIP = ROOT / "models" / "tiny-clip"
PROMPTS = [
    "a large red circle on the left over a plain black background",
    "two small blue squares at the top over a dotted gray background",
]


@pytest.fixture(scope="module")
def clip():
    return load(f"local-dir:{TINY_CLIP}")


def test_tiny_clip_loads_through_open_clip_and_embeds_in_32_dimensions(clip):
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{TINY_CLIP}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{TINY_CLIP}")
    image = next(examples("test", 1, 1)).image
    with torch.no_grad():
        assert model.encode_image(preprocess(image)[None]).shape == (1, 32)
        assert model.encode_text(tokenizer(PROMPTS)).shape == (2, 32)
    tokens = tokenizer(["A large RED circle", "a zebra"])
    assert tokens.shape == (2, TinyClipShape().context_length)
    assert tokens[1].tolist()[:3] == [3, 1, 2], "known word, [UNK], [EOS]"
    assert sum(p.stat().st_size for p in TINY_CLIP.iterdir()) < 10_000_000


def test_tiny_clip_reads_held_out_images_as_well_as_its_card_says(clip):
    shipped = json.loads((TINY_CLIP / "metrics.json").read_text())
    # the trainer's held-out set (media.train_clip.evaluate): the card's figure, measured again
    held = list(examples("test", 10_000, shipped["held_out_images"]))
    accuracy = zero_shot_top1(clip, [e.image for e in held], [e.caption for e in held])
    assert accuracy == pytest.approx(shipped["zero_shot_top1"], abs=1.5 / len(held)), accuracy
    assert accuracy >= 0.9, accuracy
    # and on held-out images the trainer never evaluated on
    other = list(examples("test", 77, 256))
    assert zero_shot_top1(clip, [e.image for e in other], [e.caption for e in other]) >= 0.85


def test_the_text_encoder_component_is_the_clip_text_tower(clip):
    encoder = TinyClipTextEncoder.from_open_clip(TINY_CLIP).eval()
    tokens = clip.tokenizer(PROMPTS)
    with torch.no_grad():
        pooled, features = encoder(tokens)
        expected = clip.model.encode_text(tokens)
    assert features.shape == (2, TinyClipShape().context_length, TinyClipShape().text_width)
    assert torch.allclose(pooled, expected, atol=1e-5)


def test_missing_model_folders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no open_clip model folder"):
        load(f"local-dir:{tmp_path / 'nope'}")
    with pytest.raises(FileNotFoundError):
        TinyClipTextEncoder.from_open_clip(tmp_path)


def _random_pipeline() -> TinyText2ImagePipeline:
    from transformers import AutoTokenizer

    encoder = TinyClipTextEncoder.from_open_clip(TINY_CLIP).eval()
    unet = build_unet(encoder.width, 32, seed=5)
    tokenizer = AutoTokenizer.from_pretrained(str(TINY_CLIP))
    pipe = TinyText2ImagePipeline(unet=unet, scheduler=build_scheduler(), text_encoder=encoder, tokenizer=tokenizer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_pipeline_round_trips_through_save_and_from_pretrained_and_is_deterministic(tmp_path):
    _random_pipeline().save_pretrained(str(tmp_path / "t2i"))
    index = json.loads((tmp_path / "t2i" / "model_index.json").read_text())
    assert index["_class_name"] == "TinyText2ImagePipeline"
    assert index["text_encoder"] == ["media.t2i", "TinyClipTextEncoder"]
    pipe = TinyText2ImagePipeline.from_pretrained(str(tmp_path / "t2i"))
    pipe.set_progress_bar_config(disable=True)

    def run(seed: int) -> list[bytes]:
        out = pipe(PROMPTS, num_inference_steps=3, generator=torch.Generator().manual_seed(seed))
        return [image.tobytes() for image in out.images]

    first = run(1)
    assert first == run(1)
    assert first != run(2)
    assert all(image.size == (32, 32) for image in pipe(PROMPTS, num_inference_steps=2).images)
    array = pipe(PROMPTS[0], num_inference_steps=2, num_images_per_prompt=3, output_type="np").images
    assert array.shape == (3, 32, 32, 3) and array.min() >= 0.0 and array.max() <= 1.0


def test_pipeline_refuses_bad_arguments():
    pipe = _random_pipeline()
    with pytest.raises(ValueError, match="1 negative prompts for 2 prompts"):
        pipe(PROMPTS, negative_prompt=["x"], num_inference_steps=1)
    with pytest.raises(ValueError, match="output_type"):
        pipe(PROMPTS[0], num_inference_steps=1, output_type="latent")


def test_hard_negatives_change_exactly_one_attribute():
    import random

    from media.dataset import ATTRIBUTES

    rng = random.Random(0)
    for e in examples("train", 0, 50):
        other = one_attribute_changed(e.composition, rng)
        assert sum(getattr(other, a) != getattr(e.composition, a) for a in ATTRIBUTES) == 1


@pytest.mark.slow
def test_clip_training_writes_a_loadable_model_and_resumes(tmp_path):
    config = replace(ClipTraining(), steps=2, batch=8, eval_every=1, eval_images=16)
    shape = replace(TinyClipShape(), vision_layers=1, text_layers=1)
    metrics = train_clip(tmp_path / "clip", tmp_path / "work", shape, config)
    assert (tmp_path / "clip" / "README.md").read_text().count("held-out") >= 1
    weights = (tmp_path / "clip" / "open_clip_model.safetensors").read_bytes()
    # A rerun resumes from the last checkpoint (step 2 of 2) and writes the same weights.
    train_clip(tmp_path / "clip", tmp_path / "work", shape, config)
    assert (tmp_path / "clip" / "open_clip_model.safetensors").read_bytes() == weights
    loaded = load(f"local-dir:{tmp_path / 'clip'}")
    assert loaded.encode_texts(PROMPTS).shape == (2, 32)
    # the reported figure is the saved model's, on the trainer's held-out set
    held = list(examples("test", 10_000, config.eval_images))
    assert metrics["zero_shot_top1"] == zero_shot_top1(loaded, [e.image for e in held], [e.caption for e in held])


@pytest.mark.slow
def test_t2i_training_writes_a_diffusers_folder(tmp_path):
    config = replace(T2ITraining(), steps=2, batch=4, eval_every=2, eval_prompts=2, eval_steps=2, final_prompts=2)
    metrics = train_t2i(TINY_CLIP, tmp_path / "t2i", tmp_path / "work", config)
    assert (tmp_path / "work" / "checkpoint.pt").exists()
    weights = (tmp_path / "t2i" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    # Evaluation-only settings may change and the finished run still resumes (no retraining).
    again = train_t2i(TINY_CLIP, tmp_path / "t2i", tmp_path / "work", replace(config, guidance=2.0, final_prompts=3))
    assert (tmp_path / "t2i" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == weights
    assert json.loads((tmp_path / "t2i" / "metrics.json").read_text())["guidance"] == 2.0
    pipe = TinyText2ImagePipeline.from_pretrained(str(tmp_path / "t2i"))
    pipe.set_progress_bar_config(disable=True)
    # the reported figures are the saved pipeline's, on the trainer's final held-out prompts
    final = replace(config, guidance=2.0, final_prompts=3)
    assert again["attribute_accuracy"] == attribute_accuracy(pipe, final, seed=1, prompts=final.final_prompts)
    assert metrics["attribute_accuracy"] == attribute_accuracy(pipe, config, seed=1, prompts=config.final_prompts)
    image = pipe(PROMPTS[0], num_inference_steps=2).images[0]
    assert np.asarray(image).shape == (32, 32, 3)


def test_the_shipped_clip_loads_by_registered_name_and_pretrained_path():
    import open_clip

    from media.clip import register

    name, weights = register(TINY_CLIP)
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=str(weights), image_mean=(0.5,) * 3, image_std=(0.5,) * 3
    )
    reference = load(f"local-dir:{TINY_CLIP}")
    tokens = open_clip.get_tokenizer(name)(PROMPTS)
    with torch.no_grad():
        assert torch.allclose(model.eval().encode_text(tokens), reference.model.encode_text(tokens))
        [example_] = examples("test", 3, 1)
        pixels = preprocess(example_.image).unsqueeze(0)
        assert torch.allclose(
            model.encode_image(pixels), reference.model.encode_image(reference.preprocess(example_.image).unsqueeze(0))
        )
