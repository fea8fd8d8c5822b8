"""zkml.curation_head and zkml.settings: the exported graph and the pinned circuit settings,
checked against what the real ezkl writes."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

from zkml.curation_head import ONNX_OPSET, BatchedHead, HeadShape, build_curation_head, export_onnx
from zkml.settings import SettingsError, check_pinned, write_settings


def test_head_is_deterministic_per_seed():
    a, b, c = build_curation_head(seed=1), build_curation_head(seed=1), build_curation_head(seed=2)
    x = torch.randn(4, HeadShape().embed_dim)
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), c(x))
    assert a(x).shape == (4, 1)
    with pytest.raises(ValueError, match="must be positive"):
        HeadShape(embed_dim=0)


@pytest.mark.parametrize("batch", [1, 8])
def test_export_fixes_batch_and_opset(tmp_path: Path, batch: int):
    path = export_onnx(build_curation_head(HeadShape(16, 8)), tmp_path / "head.onnx", batch=batch)
    model = onnx.load(str(path))
    assert model.opset_import[0].version == ONNX_OPSET
    # One input per inference (embedding, then one felt: the proven digest): ezkl hashes each
    # input on its own, one commitment per inference.
    assert [i.name for i in model.graph.input] == [f"input_{i}" for i in range(batch)]
    for graph_input in model.graph.input:
        assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim] == [1, 16 + 1]
    score, digest = model.graph.output
    assert score.name == "score" and digest.name == "digest"
    assert [d.dim_value for d in score.type.tensor_type.shape.dim] == [batch]
    assert [d.dim_value for d in digest.type.tensor_type.shape.dim] == [batch]
    with pytest.raises(ValueError, match="batch must be at least 1"):
        export_onnx(build_curation_head(), tmp_path / "x.onnx", batch=0)


def test_batched_head_scores_embeddings_and_passes_proven_digests_through():
    head = build_curation_head(HeadShape(16, 8), seed=3)
    embeddings = torch.randn(3, 16, generator=torch.Generator().manual_seed(5))
    digests = torch.tensor([[float(2**20 + 9 * i)] for i in range(3)])
    rows = [torch.cat([embeddings[i : i + 1], digests[i : i + 1]], dim=1) for i in range(3)]
    with torch.no_grad():
        scores, digest = BatchedHead(head)(*rows)
        # Values of 2^20 would move any score they reached by far more than rounding.
        assert torch.allclose(scores, head(embeddings).reshape(-1), rtol=0, atol=1e-6), "scores read embeddings alone"
    assert torch.equal(digest, digests.reshape(-1))


def test_ezkl_settings_carry_every_pinned_choice(tmp_path: Path):
    onnx_path = export_onnx(build_curation_head(HeadShape(16, 8)), tmp_path / "head.onnx", batch=4)
    settings = write_settings(onnx_path, tmp_path / "settings.json")
    run_args = settings["run_args"]
    assert run_args["input_visibility"] == {"Hashed": {"hash_is_public": True, "outlets": []}}
    assert run_args["output_visibility"] == "Public"
    assert run_args["param_visibility"] == "Fixed"
    assert run_args["check_mode"] == "SAFE"
    assert run_args["input_scale"] == 13
    assert run_args["ignore_range_check_inputs_outputs"] is True


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("input_visibility", "Public", "input_visibility is 'public'"),
        ("input_visibility", {"Hashed": {"hash_is_public": False, "outlets": []}}, "input hash is not public"),
        ("output_visibility", "Private", "output_visibility is 'private'"),
        ("param_visibility", "Public", "param_visibility is 'public'"),
        ("check_mode", "UNSAFE", "check_mode is 'unsafe'"),
        ("input_scale", 7, "input_scale is 7"),
        ("ignore_range_check_inputs_outputs", False, "ignore_range_check_inputs_outputs is False, pinned True"),
    ],
)
def test_check_pinned_refuses_any_change(tmp_path: Path, key: str, value: object, message: str):
    onnx_path = export_onnx(build_curation_head(HeadShape(16, 8)), tmp_path / "head.onnx", batch=1)
    path = tmp_path / "settings.json"
    settings = write_settings(onnx_path, path)
    settings["run_args"][key] = value
    path.write_text(json.dumps(settings))
    with pytest.raises(SettingsError, match=message):
        check_pinned(path)


def test_check_pinned_refuses_a_file_without_the_range_check_pin(tmp_path: Path):
    # An older ezkl (or a hand-written file) has no such key: its inputs are range-checked, and
    # the 253-bit proven digests would not pass.
    onnx_path = export_onnx(build_curation_head(HeadShape(16, 8)), tmp_path / "head.onnx", batch=1)
    path = tmp_path / "settings.json"
    settings = write_settings(onnx_path, path)
    del settings["run_args"]["ignore_range_check_inputs_outputs"]
    path.write_text(json.dumps(settings))
    with pytest.raises(SettingsError, match="ignore_range_check_inputs_outputs is None, pinned True"):
        check_pinned(path)


def test_check_pinned_refuses_non_settings(tmp_path: Path):
    path = tmp_path / "s.json"
    path.write_text("{}")
    with pytest.raises(SettingsError, match="not an ezkl settings file"):
        check_pinned(path)
    with pytest.raises(SettingsError, match="not an ezkl settings file"):
        check_pinned(tmp_path / "absent.json")


def test_ezkl_default_is_unsafe_which_is_why_it_is_pinned(tmp_path: Path):
    # ezkl's own defaults: private input, private output... UNSAFE checks and range-checked
    # inputs. The pinned settings differ on every one of these, so a missing pin would show up
    # here.
    import ezkl

    onnx_path = export_onnx(build_curation_head(HeadShape(16, 8)), tmp_path / "head.onnx", batch=1)
    assert ezkl.gen_settings(str(onnx_path), str(tmp_path / "default.json"))
    with pytest.raises(SettingsError) as info:
        check_pinned(tmp_path / "default.json")
    assert "check_mode is 'unsafe'" in str(info.value)
    assert "ignore_range_check_inputs_outputs is False" in str(info.value)


def test_trained_weights_load_from_a_head_folder_a_safetensors_file_or_a_state_dict(tmp_path: Path):
    """The shipped head loads into the circuit's module (its shape from the weights); a folder whose
    weights are not the ones its head.json names, or a file that is no weights, is refused."""
    import shutil

    from zkml.curation_head import CurationHead, load_weights

    folder = Path(__file__).resolve().parents[2] / "models" / "curation-head"
    head = CurationHead.from_state(load_weights(folder))
    assert head.shape == HeadShape(64, 8) == HeadShape()
    same = CurationHead.from_state(load_weights(folder / "curation_head.safetensors"))
    torch.save(head.state_dict(), tmp_path / "head.pt")
    again = CurationHead.from_state(load_weights(tmp_path / "head.pt"))
    x = torch.randn(3, 64)
    assert torch.equal(head(x), same(x)) and torch.equal(head(x), again(x))
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    weights = bytearray((copy / "curation_head.safetensors").read_bytes())
    weights[-1] ^= 1
    (copy / "curation_head.safetensors").write_bytes(bytes(weights))
    with pytest.raises(ValueError, match="is not the weights"):
        load_weights(copy)
    (tmp_path / "junk.pt").write_bytes(b"not weights")
    with pytest.raises(ValueError, match="not curation-head weights"):
        load_weights(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="not curation-head weights"):
        CurationHead.from_state({"net.0.weight": torch.zeros(8, 64)})
