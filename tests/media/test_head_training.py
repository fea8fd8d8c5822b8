"""media.head_training and the shipped models/curation-head: the weights load into zkml's
CurationHead; on a fixed held-out sample the head decides above its target and above the
curator's cosine bands; the fixed-point score it is proven with is ezkl's own (checked against
real witnesses, rounding ties included) and decides as the float score does; review decisions
are taken in; a run is deterministic."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import ezkl as untyped_ezkl
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from media.clip import WEIGHTS_FILE as CLIP_WEIGHTS
from media.clip import LoadedClip, load
from media.dataset import Composition
from media.head_training import (
    ACCEPT,
    COSINE_BANDS,
    EZKL_SCALE,
    JUDGED,
    REJECT,
    REVIEW,
    Bands,
    Embedder,
    HeadTraining,
    HeadTrainingError,
    Labelled,
    Pair,
    Review,
    ShippedHead,
    Trained,
    fit,
    fixed_point_scores,
    float_scores,
    head_examples,
    head_pools,
    held_out_pairs,
    held_out_shown,
    judged_pairs,
    load_head,
    main,
    measure,
    read_reviews,
    rescale_slack,
    train,
    training_pairs,
)
from media.judge import judge
from zkml.curation_head import CurationHead, HeadShape, export_onnx
from zkml.evm import decode_signed, felt_to_int
from zkml.pipeline import Circuit, HeadInput, input_felts

ROOT = Path(__file__).resolve().parents[2]
HEAD = ROOT / "models" / "curation-head"
CLIP = ROOT / "models" / "tiny-clip"
ZK_CACHE = ROOT / ".cache" / "head-training-tests"
SAMPLE_IMAGES = 128
#: A run small enough for a test: seconds, not a minute.
TINY = HeadTraining(images=32, validation_images=32, held_out_images=16, epochs=4, review_weight=50.0)

ezkl: Any = untyped_ezkl  # its stubs mark every keyword with a default as required


@pytest.fixture(scope="module")
def clip() -> LoadedClip:
    return load(f"local-dir:{CLIP}")


@pytest.fixture(scope="module")
def embedder(clip: LoadedClip) -> Embedder:
    """One embedder for the module's runs, so each caption is embedded once."""
    return Embedder(clip)


@pytest.fixture(scope="module")
def tiny_run(embedder: Embedder) -> Trained:
    return train(embedder, TINY)


@pytest.fixture(scope="module")
def shipped() -> ShippedHead:
    return load_head(HEAD)


@pytest.fixture(scope="module")
def sample(embedder: Embedder) -> Labelled:
    """384 held-out pairs: 128 held-out images, each with its caption, a judged attribute changed
    and a random caption, labelled by the pixel judge."""
    return held_out_pairs(embedder, held_out_shown(SAMPLE_IMAGES))


def ezkl_scores(state: dict[str, torch.Tensor], shape: HeadShape, rows: list[list[float]], tmp: Path) -> list[int]:
    """The scores real ezkl witnesses carry for `rows`, through the project's pipeline (pinned
    settings and tuning, batch 1; keys cached under .cache/)."""
    head = CurationHead(shape)
    head.load_state_dict(state)
    circuit = Circuit.build(
        export_onnx(head.eval(), tmp / "head.onnx", batch=1), ZK_CACHE, batch=1, embed_dim=shape.embed_dim
    )
    settings = circuit.settings()
    assert settings["run_args"]["input_scale"] == settings["run_args"]["param_scale"] == EZKL_SCALE
    assert settings["model_output_scales"][0] == EZKL_SCALE
    scores = []
    for row in rows:
        data, witness = tmp / "input.json", tmp / "witness.json"
        data.write_text(json.dumps({"input_data": [input_felts(HeadInput(row, bytes(32)), EZKL_SCALE)]}))
        ezkl.gen_witness(data=str(data), model=str(circuit.artifacts.compiled), output=str(witness))
        scores.append(decode_signed(felt_to_int(json.loads(witness.read_text())["outputs"][0][0])))
    return scores


# ------------------------------------------------------------------ the shipped head


def test_shipped_weights_load_into_zkml_curation_head(shipped: ShippedHead, sample: Labelled):
    clip_width = sample.rows.shape[1] // 2
    assert (shipped.embed_dim, shipped.hidden) == (2 * clip_width, 8)
    head = CurationHead(HeadShape(embed_dim=shipped.embed_dim, hidden=shipped.hidden))
    head.load_state_dict(shipped.state, strict=True)
    with torch.no_grad():
        zkml_scores = head.eval()(sample.rows).reshape(-1).double().numpy()
    assert np.array_equal(zkml_scores, float_scores(shipped.state, sample.rows))
    assert shipped.config["fixed_point"]["scale"] == EZKL_SCALE
    assert (
        shipped.config["fixed_point"]["accept_at"],
        shipped.config["fixed_point"]["review_at"],
    ) == shipped.bands.fixed()


def test_shipped_head_names_the_clip_it_reads():
    import hashlib

    config = json.loads((HEAD / "head.json").read_text())
    assert config["clip_weights_sha256"] == hashlib.sha256((CLIP / CLIP_WEIGHTS).read_bytes()).hexdigest()


def test_shipped_head_decides_the_held_out_sample_above_target_and_above_the_cosine(
    shipped: ShippedHead, sample: Labelled
):
    figures = measure(shipped.state, shipped.bands, sample)
    assert figures["pairs"] == 3 * SAMPLE_IMAGES
    assert figures["head_decision_accuracy"] >= 0.95, figures
    assert figures["head_decision_accuracy"] > figures["cosine_decision_accuracy"], figures


def test_cosine_baseline_bands_are_the_curators_defaults():
    from agents.models.curator import CurationPolicy

    policy = CurationPolicy()
    assert (policy.accept_at, policy.review_at) == COSINE_BANDS


def test_fixed_point_decision_agrees_with_the_float_decision(shipped: ShippedHead, sample: Labelled):
    floats = float_scores(shipped.state, sample.rows)
    fixed = fixed_point_scores(shipped.state, sample.rows)
    agreement = float((shipped.bands.decide_fixed(fixed) == shipped.bands.decide(floats)).mean())
    assert agreement >= 0.995
    assert np.abs(fixed / (1 << EZKL_SCALE) - floats).max() < (shipped.bands.accept_at - shipped.bands.review_at) / 2


def test_fixed_point_scores_are_those_of_real_ezkl_witnesses(shipped: ShippedHead, sample: Labelled, tmp_path: Path):
    """The shipped head's circuit: the pairs nearest a band edge and a few others, exactly."""
    floats = float_scores(shipped.state, sample.rows)
    edge = np.minimum(np.abs(floats - shipped.bands.accept_at), np.abs(floats - shipped.bands.review_at))
    chosen = [int(i) for i in np.argsort(edge, kind="stable")[:8]] + list(range(0, len(floats), 97))
    rows = sample.rows[chosen]
    expected = fixed_point_scores(shipped.state, rows)
    assert ezkl_scores(shipped.state, HeadShape(shipped.embed_dim, shipped.hidden), rows.tolist(), tmp_path) == list(
        expected
    )


def test_fixed_point_rounding_ties_go_away_from_zero_as_in_ezkl(tmp_path: Path):
    """A head made to land on halves: inputs at 2.5 / 2^13, and products of -0.5 x 3 and -0.5 x 5
    (rescaled to -1.5 and -2.5), where half-to-even or half-up rounding would differ."""
    shape = HeadShape(embed_dim=4, hidden=2)
    state = {k: torch.zeros_like(v) for k, v in CurationHead(shape).state_dict().items()}
    state["net.0.weight"][0, 0] = state["net.0.weight"][1, 1] = 1.0
    state["net.2.weight"][0] = torch.tensor([-0.5, 0.5])
    unit = 1 / (1 << EZKL_SCALE)
    rows = [
        [3 * unit, 0, 0, 0],
        [2.5 * unit, 0, 0, 0],
        [-2.5 * unit, 0, 0, 0],
        [5 * unit, 0, 0, 0],
        [0, 2.5 * unit, 0, 0],
    ]
    expected = fixed_point_scores(state, np.array(rows))
    assert list(expected) == [-2, -2, 0, -3, 2]
    assert ezkl_scores(state, shape, rows, tmp_path) == list(expected)


# ------------------------------------------------------------------ bands and pairs


def test_a_provers_rounding_slack_moves_a_score_far_less_than_a_band(shipped: ShippedHead):
    """ezkl's rescale accepts its quotient rounded either way, so a dishonest prover can move a
    proven score by up to `rescale_slack` units (29 for the shipped head of 2026-11: its output
    weights sum to 28 in magnitude): a score that close to a band edge can be proven in the neighbouring
    band, never across the review band (1,884 units wide), so an accept is never proven for a
    reject or the other way round."""
    slack = rescale_slack(shipped.state)
    quantised = np.abs(np.round(shipped.state["net.2.weight"].double().numpy() * 2**EZKL_SCALE))
    assert slack == int(np.ceil(quantised.sum() / 2**EZKL_SCALE)) + 1
    accept_at, review_at = shipped.bands.fixed()
    assert 2 * slack < accept_at - review_at


def test_bands_keep_false_accepts_and_false_rejects_within_the_budget():
    rng = np.random.default_rng(7)
    for spread in (1.0, 4.0):  # overlapping classes, then separated ones
        positives, negatives = rng.normal(spread, 1, 4_000), rng.normal(-spread, 1, 4_000)
        scores = np.concatenate([positives, negatives])
        labels = np.concatenate([np.ones(4_000, bool), np.zeros(4_000, bool)])
        bands = Bands.choose(scores, labels, 0.01)
        assert bands.review_at <= bands.accept_at
        decisions = bands.decide(scores)
        assert (decisions[~labels] == ACCEPT).mean() <= 0.01
        assert (decisions[labels] == REJECT).mean() <= 0.01


def test_bands_refuse_review_above_accept_and_one_class_data():
    with pytest.raises(HeadTrainingError, match="above accept_at"):
        Bands(accept_at=0.1, review_at=0.2)
    with pytest.raises(HeadTrainingError, match="both"):
        Bands.choose(np.array([1.0, 2.0]), np.array([True, True]), 0.01)


def test_fixed_point_bands_decide_as_the_float_bands_on_the_dequantised_score():
    bands = Bands(accept_at=0.79, review_at=-0.56)
    accept_at, review_at = bands.fixed()
    scores = np.arange(review_at - 3, accept_at + 3, dtype=np.int64)
    assert np.array_equal(bands.decide_fixed(scores), bands.decide(scores / (1 << EZKL_SCALE)))
    assert set(bands.decide_fixed(scores)) == {ACCEPT, REVIEW, REJECT}


def test_held_out_pairs_are_labelled_by_the_pixel_judge():
    shown = held_out_shown(24)
    pairs = judged_pairs(shown, random.Random(1))
    assert pairs[0].kind == "match" and {p.kind for p in pairs} <= {"match", "random", *JUDGED}
    parse = {c.caption: c for c in (s.composition for s in shown)}
    for pair in pairs:
        image = shown[pair.image]
        verdict = judge(image.image)
        prompt = parse.get(pair.prompt) or _composition(pair.prompt)
        assert pair.label == (verdict.matches(prompt) and verdict.count == prompt.count)
        if pair.kind == "random":
            assert any(getattr(prompt, a) != getattr(image.composition, a) for a in JUDGED)


def test_training_pairs_keep_to_the_pool_and_give_one_match_per_image():
    pool, validation = head_pools()
    assert not set(pool) & set(validation) and all(c.split == "train" for c in pool + validation)
    shown = list(head_examples(pool, "t", 0, 20))
    pairs = training_pairs(shown, pool, ["colour", "size"], random.Random(0))
    captions = {c.caption for c in pool}
    assert all(p.prompt in captions for p in pairs)
    assert [p.label for p in pairs] == [True, False, False] * 20
    assert {p.kind for p in pairs} <= {"match", "colour", "size", "random"}


def _composition(caption: str) -> Composition:
    from media.dataset import parse_caption

    found = parse_caption(caption)
    assert found is not None
    return found


# ------------------------------------------------------------------ review data


def _review_line(prompt: str, embedding: list[float], label: str) -> str:
    """A line as `proofmint review export` writes it (more keys than the trainer reads)."""
    row = {
        "alignment": 0.7,
        "decided_at": 1_764_000_000,
        "digest": "0x" + "ab" * 32,
        "embedding": embedding,
        "label": label,
        "prompt": prompt,
        "reason": "",
        "reviewer": "0x" + "11" * 20,
        "signature": "0x" + "22" * 65,
    }
    return json.dumps(row, sort_keys=True)


def test_read_reviews_takes_export_lines_and_normalises_the_embedding(tmp_path: Path):
    path = tmp_path / "reviews.jsonl"
    path.write_text(
        _review_line("a small red circle", [3.0, 4.0], "accept") + "\n\n" + _review_line("x", [0, 2], "reject") + "\n"
    )
    reviews = read_reviews(path, width=2)
    assert [(r.prompt, r.embedding, r.accept) for r in reviews] == [
        ("a small red circle", (0.6, 0.8), True),
        ("x", (0.0, 1.0), False),
    ]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "a JSON object"),
        (_review_line("p", [1.0, 0.0], "maybe"), "label is 'accept' or 'reject'"),
        (_review_line("", [1.0, 0.0], "accept"), "no prompt"),
        (_review_line("p", [1.0], "accept"), "list of 2 finite numbers"),
        (_review_line("p", [1.0, float("nan")], "accept"), "list of 2 finite numbers"),
        (_review_line("p", [0.0, 0.0], "accept"), "all zeros"),
    ],
    ids=["not-json", "not-an-object", "unknown-label", "no-prompt", "wrong-width", "not-finite", "all-zeros"],
)
def test_read_reviews_names_the_line_it_cannot_use(tmp_path: Path, line: str, says: str):
    path = tmp_path / "reviews.jsonl"
    path.write_text(_review_line("fine", [1.0, 0.0], "accept") + "\n" + line + "\n")
    with pytest.raises(HeadTrainingError, match=f"reviews.jsonl:2: .*{says}"):
        read_reviews(path, width=2)


def test_reviews_are_trained_on_and_move_the_score_they_label(embedder: Embedder, tiny_run: Trained):
    """Held-out images with their own captions, labelled reject by a person: trained on, the head
    scores exactly those pairs lower than without them."""
    shown = held_out_shown(4, seed=5)
    images = embedder.images([s.image for s in shown])
    reviews = [Review(s.composition.caption, tuple(v.tolist()), False) for s, v in zip(shown, images, strict=True)]
    with_reviews = train(embedder, TINY, reviews)
    assert with_reviews.metrics["training_pairs"] == tiny_run.metrics["training_pairs"] + len(reviews)
    pairs = [Pair(i, s.composition.caption, False, "review") for i, s in enumerate(shown)]
    rows = embedder.rows(images, pairs)
    assert (float_scores(with_reviews.state, rows) < float_scores(tiny_run.state, rows)).all()


def test_the_command_line_trains_a_folder_with_the_review_file(tmp_path: Path):
    reviews = tmp_path / "decisions.jsonl"
    width = 32
    reviews.write_text(
        _review_line(
            "a small red circle on the left over a plain black background", [1.0] + [0.0] * (width - 1), "accept"
        )
        + "\n"
    )
    out = tmp_path / "head"
    args = ["--out", str(out), "--clip", str(CLIP), "--reviews", str(reviews), "--images", "32", "--epochs", "2"]
    args += ["--validation-images", "32", "--held-out-images", "16"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "head.json").read_text())
    assert config["reviews"]["count"] == 1 and len(config["reviews"]["sha256"]) == 64
    assert json.loads((out / "metrics.json").read_text())["training_pairs"] == 3 * 32 + 1
    loaded = load_head(out)
    assert loaded.embed_dim == 2 * width
    assert "human review decisions: 1" in (out / "README.md").read_text()


def test_the_command_line_names_a_bad_review_line(tmp_path: Path):
    reviews = tmp_path / "decisions.jsonl"
    reviews.write_text('{"prompt": "p", "embedding": [1.0], "label": "accept"}\n')
    result = CliRunner().invoke(main, ["--out", str(tmp_path / "head"), "--clip", str(CLIP), "--reviews", str(reviews)])
    assert result.exit_code == 1
    assert "decisions.jsonl:1: embedding is a list of 32 finite numbers" in result.output
    assert not (tmp_path / "head").exists()


# ------------------------------------------------------------------ determinism and folders


def test_training_is_deterministic_for_a_seed(embedder: Embedder, tiny_run: Trained):
    again = train(embedder, TINY)
    assert tiny_run.state.keys() == again.state.keys()
    assert all(torch.equal(tiny_run.state[k], again.state[k]) for k in again.state)
    assert tiny_run.bands == again.bands and tiny_run.metrics == again.metrics
    data = _tiny_data(embedder)
    assert not torch.equal(fit(data, replace(TINY, seed=1))["net.0.weight"], fit(data, TINY)["net.0.weight"])


def _tiny_data(embedder: Embedder) -> Labelled:
    pool, _ = head_pools()
    shown = list(head_examples(pool, "t", 0, 16))
    pairs = training_pairs(shown, pool, ["colour"], random.Random(0))
    return Labelled.of(embedder.rows(embedder.images([s.image for s in shown]), pairs), pairs)


def test_load_head_refuses_weights_head_json_does_not_name(tmp_path: Path):
    folder = tmp_path / "head"
    folder.mkdir()
    for name in ("head.json", "curation_head.safetensors"):
        (folder / name).write_bytes((HEAD / name).read_bytes())
    load_head(folder)
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "curation_head.safetensors"))
    state["net.2.bias"] = state["net.2.bias"] + 1.0
    save_file(state, str(folder / "curation_head.safetensors"))
    with pytest.raises(HeadTrainingError, match="not the weights"):
        load_head(folder)
    with pytest.raises(HeadTrainingError, match="make train-head"):
        load_head(tmp_path / "missing")
