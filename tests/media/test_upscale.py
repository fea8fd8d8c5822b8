"""The x2 upscaler (`media/upscale.py`) and its trainer (`media/train_upscaler.py`): the shipped
folder loads through both entry points and beats bicubic on held-out images (an untrained one
does not), outputs are twice the side and RGB, the bytes are reproducible, bad input is refused."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from PIL import Image

import media.train_upscaler as trainer
from media.train_upscaler import FINAL_SEED, UpscaleTraining, evaluate, pairs, psnr
from media.upscale import (
    MAX_IMAGES,
    MAX_SIDE,
    MIN_SIDE,
    DeterminismError,
    TinyUpscalePipeline,
    TinyUpscaler,
    UpscaleInputError,
    bicubic,
    build_upscaler,
    load_upscaler,
    to_pixels,
    to_uint8,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "tiny-upscaler"
#: How far above bicubic (dB of held-out PSNR) a trained upscaler must be; the shipped one is
#: about 4 dB above, an untrained one exactly at bicubic.
MARGIN_DB = 1.0
#: A held-out stream neither the trainer nor the bench reads.
TEST_SEED = 4_040


@pytest.fixture(scope="module")
def pipe() -> TinyUpscalePipeline:
    return load_upscaler(SHIPPED)


@pytest.fixture(scope="module")
def held() -> list[trainer.Pair]:
    return pairs("test", TEST_SEED, 16)


def digest(images: list[Image.Image]) -> str:
    return hashlib.sha256(b"".join(image.tobytes() for image in images)).hexdigest()


def gain(upscaler: Any, held: list[trainer.Pair]) -> float:
    return evaluate(TinyUpscalePipeline(upscaler=upscaler), held).gain_db


def test_the_shipped_folder_loads_through_both_entry_points_as_the_tiny_pipeline(pipe, held):
    index = json.loads((SHIPPED / "model_index.json").read_text())
    assert index["_class_name"] == "TinyUpscalePipeline"
    assert index["upscaler"] == ["media.upscale", "TinyUpscaler"]
    own = TinyUpscalePipeline.from_pretrained(str(SHIPPED))
    generic = DiffusionPipeline.from_pretrained(str(SHIPPED))
    assert type(generic) is TinyUpscalePipeline and type(generic.upscaler) is TinyUpscaler
    lows = [p.low for p in held[:4]]
    assert digest(generic(lows).images) == digest(own(lows).images) == digest(pipe(lows).images)
    weights = SHIPPED / "upscaler" / "diffusion_pytorch_model.safetensors"
    assert weights.stat().st_size < 1_000_000
    assert (
        sum(p.numel() for p in pipe.upscaler.parameters())
        == json.loads((SHIPPED / "metrics.json").read_text())["parameters"]
    )


def test_the_shipped_upscaler_beats_bicubic_on_held_out_images(pipe, held):
    figures = evaluate(pipe, held)
    assert figures.psnr_db >= figures.psnr_db_bicubic + MARGIN_DB, figures


def test_the_card_figures_are_the_shipped_models_measured_again(pipe):
    shipped = json.loads((SHIPPED / "metrics.json").read_text())
    figures = evaluate(pipe, pairs("test", FINAL_SEED, shipped["held_out_images"]))
    assert round(figures.psnr_db, 4) == shipped["psnr_db"]
    assert round(figures.psnr_db_bicubic, 4) == shipped["psnr_db_bicubic"]
    assert shipped["psnr_db"] >= shipped["psnr_db_bicubic"] + MARGIN_DB
    assert f"| PSNR (dB) | {shipped['psnr_db']:.2f} | {shipped['psnr_db_bicubic']:.2f} |" in (
        (SHIPPED / "README.md").read_text()
    )


def test_an_untrained_upscaler_does_not_beat_bicubic(held):
    fresh = build_upscaler(seed=3)
    assert gain(fresh, held) == 0.0, "a fresh upscaler is exactly bicubic: its last conv starts at zero"
    randomised = build_upscaler(seed=3)
    torch.manual_seed(3)
    for parameter in randomised.tail.parameters():
        torch.nn.init.normal_(parameter, std=0.05)
    assert gain(randomised, held) < -MARGIN_DB


def test_psnr_is_of_the_mean_squared_error_over_every_pixel():
    zeros, ones = np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3), np.uint8)
    assert psnr([zeros], [zeros]) == float("inf")
    assert psnr([zeros, zeros], [ones, zeros]) == pytest.approx(10 * np.log10(255**2 / 0.5))


def test_bicubic_is_the_baseline_the_figures_name(held):
    lows = to_pixels([p.low for p in held[:2]])
    assert to_uint8(bicubic(lows)).shape == (2, 64, 64, 3)


@pytest.mark.parametrize(("size", "mode"), [((32, 32), "RGB"), ((40, 17), "RGB"), ((4, 4), "L"), ((32, 32), "P")])
def test_the_output_is_rgb_and_twice_the_side(pipe, size, mode):
    image = pairs("test", TEST_SEED, 1)[0].high.resize(size).convert(mode)
    [out] = pipe(image).images
    assert out.mode == "RGB" and out.size == (2 * size[0], 2 * size[1])
    array = pipe([image, image], output_type="np").images
    assert array.shape == (2, 2 * size[1], 2 * size[0], 3) and array.dtype == np.float32
    assert array.min() >= 0.0 and array.max() <= 1.0
    assert np.array_equal(np.asarray(out), (array[0] * 255).round().astype(np.uint8))


def test_images_of_different_sizes_come_back_in_order_and_return_dict_false_is_a_tuple(pipe, held):
    small = held[0].low.resize((8, 12))
    images = pipe([held[0].low, small]).images
    assert [i.size for i in images] == [(64, 64), (16, 24)]
    arrays = pipe([held[0].low, small], output_type="np").images
    assert [a.shape for a in arrays] == [(64, 64, 3), (24, 16, 3)]
    output = pipe(held[0].low, return_dict=False)
    assert isinstance(output, tuple) and digest(output[0]) == digest(images[:1])


def test_the_same_input_gives_the_same_bytes_across_calls_batches_and_threads(pipe, held):
    lows = [p.low for p in held]
    first = pipe(lows).images
    assert digest(pipe(lows).images) == digest(first)
    alone = [pipe(image).images[0] for image in lows]
    assert digest(alone) == digest(first), "an image's bytes do not depend on the rest of the call"
    reversed_ = pipe(lows[::-1]).images[::-1]
    assert digest(reversed_) == digest(first)
    threads = torch.get_num_threads()
    try:
        for count in (1, 3):
            torch.set_num_threads(count)
            assert digest(pipe(lows).images) == digest(first), f"{count} threads"
            assert np.array_equal(pipe(lows, output_type="np").images, pipe(lows, output_type="np").images)
    finally:
        torch.set_num_threads(threads)


def test_another_process_gives_the_same_bytes(pipe, held):
    script = (
        "import hashlib, sys\n"
        "from media.train_upscaler import pairs\n"
        "from media.upscale import load_upscaler\n"
        f"lows = [p.low for p in pairs('test', {TEST_SEED}, 16)]\n"
        f"images = load_upscaler({str(SHIPPED)!r})(lows).images\n"
        "print(hashlib.sha256(b''.join(i.tobytes() for i in images)).hexdigest())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == digest(pipe([p.low for p in held]).images)


def test_a_save_and_load_round_trip_gives_the_same_bytes(pipe, held, tmp_path):
    pipe.save_pretrained(str(tmp_path / "copy"))
    copy = load_upscaler(tmp_path / "copy")
    lows = [p.low for p in held]
    assert digest(copy(lows).images) == digest(pipe(lows).images)
    assert (tmp_path / "copy" / "upscaler" / "diffusion_pytorch_model.safetensors").read_bytes() == (
        SHIPPED / "upscaler" / "diffusion_pytorch_model.safetensors"
    ).read_bytes()


def _palette_with_transparency() -> Image.Image:
    image = Image.new("P", (32, 32))
    image.info["transparency"] = 0
    return image


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Image.new("RGBA", (32, 32)), r"the image has mode 'RGBA'; the upscaler takes RGB .* convert it to RGB first"),
        (Image.new("1", (32, 32)), r"mode '1'"),
        (Image.new("LA", (32, 32)), r"mode 'LA'"),
        (Image.new("I", (32, 32)), r"mode 'I'"),
        (Image.new("F", (32, 32)), r"mode 'F'"),
        (Image.new("CMYK", (32, 32)), r"mode 'CMYK'"),
        (_palette_with_transparency(), r"mode 'P with transparency'"),
        ([Image.new("RGB", (32, 32)), Image.new("RGBA", (32, 32))], r"image 1 has mode 'RGBA'"),
        ([], r"no images to upscale: pass a PIL image or a non-empty list of them"),
        ("picture.png", r"the image is a str, not a PIL image"),
        (np.zeros((32, 32, 3), np.uint8), r"the image is a ndarray, not a PIL image"),
        (None, r"the image is a NoneType, not a PIL image"),
        ([Image.new("RGB", (32, 32)), b"png"], r"image 1 is a bytes, not a PIL image"),
        (Image.new("RGB", (MIN_SIDE - 1, 32)), rf"is 3x32; each side must be between {MIN_SIDE} and {MAX_SIDE}"),
        (Image.new("RGB", (32, MAX_SIDE + 1)), rf"is 32x{MAX_SIDE + 1}; each side must be between"),
        ([Image.new("RGB", (4, 4))] * (MAX_IMAGES + 1), rf"{MAX_IMAGES + 1} images in one call; at most {MAX_IMAGES}"),
    ],
)
def test_bad_input_is_a_clear_value_error(pipe, bad, message):
    with pytest.raises(UpscaleInputError, match=message) as raised:
        pipe(bad)
    assert isinstance(raised.value, ValueError)


def test_an_unknown_output_type_is_a_clear_value_error(pipe, held):
    with pytest.raises(ValueError, match=r"output_type must be 'pil' or 'np', not 'latent'"):
        pipe(held[0].low, output_type="latent")


def test_the_upscaler_refuses_to_run_where_its_bytes_are_not_reproducible(held):
    pipe = TinyUpscalePipeline(upscaler=build_upscaler(seed=1))
    pipe.to(torch.float64)
    with pytest.raises(DeterminismError, match=r"torch.float64 on cpu; .* float32 on CPU only"):
        pipe(held[0].low)
    pipe.to(torch.float32)
    previous = torch.backends.mkldnn.enabled
    try:
        torch.backends.mkldnn.enabled = False
        with pytest.raises(DeterminismError, match="oneDNN is switched off"):
            pipe(held[0].low)
    finally:
        torch.backends.mkldnn.enabled = previous
    assert pipe(held[0].low).images[0].size == (64, 64)


def test_load_upscaler_reads_local_folders_only(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no upscaler folder at .*: `make train-upscaler` writes one"):
        load_upscaler(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no upscaler folder at proofmint/tiny-upscaler"):
        load_upscaler("proofmint/tiny-upscaler")


def test_training_pairs_are_a_render_at_64_and_its_box_average_from_the_train_split():
    [pair] = pairs("train", 7, 1, start=3)
    assert pair.high.size == (64, 64) and pair.low.size == (32, 32)
    high = np.asarray(pair.high, dtype=np.float64)
    box = (high[0::2, 0::2] + high[1::2, 0::2] + high[0::2, 1::2] + high[1::2, 1::2]) / 4
    assert np.abs(np.asarray(pair.low, dtype=np.float64) - box).max() <= 0.5
    assert pairs("train", 7, 2)[1].high.tobytes() == pairs("train", 7, 1, start=1)[0].high.tobytes()


TINY = replace(UpscaleTraining(), steps=4, batch=4, channels=8, blocks=1, eval_every=2, eval_images=4, final_images=4)


def test_a_tiny_training_run_writes_a_loadable_folder_and_resumes_to_the_same_weights(tmp_path, monkeypatch):
    weights = Path("upscaler") / "diffusion_pytorch_model.safetensors"
    metrics = trainer.train(tmp_path / "straight", tmp_path / "work-straight", TINY)
    straight = (tmp_path / "straight" / weights).read_bytes()
    loaded = load_upscaler(tmp_path / "straight")
    assert loaded.upscaler.config.channels == 8 and loaded(Image.new("RGB", (32, 32))).images[0].size == (64, 64)
    assert json.loads((tmp_path / "straight" / "metrics.json").read_text())["psnr_db"] == metrics["psnr_db"]
    card = (tmp_path / "straight" / "README.md").read_text()
    assert "## Limits" in card and "| step | loss |" in card and "license: mit" in card

    # A run that dies after its first checkpoint (step 2 of 4) resumes there on the rerun and
    # writes the weights the uninterrupted run wrote.
    real_save = trainer.save_checkpoint

    def save_then_die(work: Path, state: dict[str, Any]) -> None:
        real_save(work, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(tmp_path / "resumed", tmp_path / "work-resumed", TINY)
    assert not (tmp_path / "resumed").exists()
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    echoed: list[str] = []
    monkeypatch.setattr(trainer.click, "echo", lambda message, err=False: echoed.append(str(message)))
    trainer.train(tmp_path / "resumed", tmp_path / "work-resumed", TINY)
    assert "resuming at step 2" in echoed
    assert (tmp_path / "resumed" / weights).read_bytes() == straight

    # A finished run is not trained again; evaluation-only settings may change.
    echoed.clear()
    again = trainer.train(tmp_path / "again", tmp_path / "work-straight", replace(TINY, final_images=6))
    assert "resuming at step 4" in echoed and again["held_out_images"] == 6
    assert (tmp_path / "again" / weights).read_bytes() == straight
