"""Curator stage with the shipped tiny CLIP: alignment bands, moderation, near-duplicates, errors."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path

import pytest
from eth_abi import encode
from eth_utils import keccak
from PIL import Image, ImageEnhance

from agents.daemons.publish import commitment_of
from agents.deploy.deployment import deploy_core
from agents.models.curator import (
    CurationItem,
    CurationPolicy,
    Curator,
    CuratorError,
    Decision,
    EmbeddingIndex,
    hash_distance,
    perceptual_hash,
)
from agents.models.head import HEAD_FOLDER, HeadError, HeadModel, head_row, payload_row
from media.clip import load
from media.dataset import COLOURS, examples, render
from tests.agents.loop_probe import loop_ticks
from tests.contracts.helpers import asset_record, register_asset, register_model
from zkml.evm import FIELD_MODULUS, PROVEN_DIGEST_BITS, input_binding
from zkml.pipeline import HeadInput, input_commitment
from zkml.settings import PinnedSettings

ROOT = Path(__file__).resolve().parents[3]
CLIP = f"local-dir:{ROOT / 'models' / 'tiny-clip'}"


@pytest.fixture(scope="module")
def clip():
    return load(CLIP)


def items(split: str, seed: int, count: int, caption=None) -> list[CurationItem]:  # type: ignore[no-untyped-def]
    held = list(examples(split, seed, count))  # type: ignore[arg-type]
    return [
        CurationItem(f"{seed:08x}{i:056x}", e.image, caption(i, held) if caption else e.caption)
        for i, e in enumerate(held)
    ]


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def test_matching_prompts_are_accepted_and_unrelated_ones_rejected(clip):
    curator = Curator(clip, CurationPolicy(), remember=False)
    matched = curator.curate_batch(items("test", 1, 128))
    shifted = curator.curate_batch(items("test", 1, 128, caption=lambda i, held: held[(i + 7) % 128].caption))
    accepted = sum(v.decision is Decision.ACCEPT for v in matched) / 128
    rejected = sum(v.decision is Decision.REJECT for v in shifted) / 128
    assert accepted >= 0.95, accepted
    assert rejected >= 0.8, rejected
    assert sum(v.alignment > w.alignment for v, w in zip(matched, shifted, strict=True)) >= 0.95 * 128


def test_the_band_between_thresholds_goes_to_human_review(clip):
    item = items("test", 2, 1)[0]
    alignment = Curator(clip, CurationPolicy(), remember=False).curate_batch([item])[0].alignment
    policy = CurationPolicy(accept_at=min(1.0, alignment + 0.01), review_at=alignment - 0.01)
    review = Curator(clip, policy, remember=False).curate_batch([item])[0]
    assert review.decision is Decision.REVIEW
    assert review.reason.startswith(f"prompt alignment {alignment:.3f} is in the human-review band")
    below = CurationPolicy(accept_at=min(1.0, alignment + 0.02), review_at=min(1.0, alignment + 0.01))
    reject = Curator(clip, below, remember=False).curate_batch([item])[0]
    assert reject.decision is Decision.REJECT
    assert reject.reason == f"prompt alignment {alignment:.3f} is below {below.review_at} (the reject threshold)"


def test_zero_shot_moderation_flags_blocked_concepts_in_prompt_and_image(clip):
    others = tuple(c for c in COLOURS if c != "orange")
    policy = CurationPolicy(blocked=("orange",), allowed=others, image_moderation_at=0.0, prompt_moderation_at=0.0)
    curator = Curator(clip, policy, remember=False)
    held = list(examples("test", 3, 400))
    orange = [e for e in held if e.composition.colour == "orange"][:30]
    plain = [e for e in held if e.composition.colour != "orange"][:60]
    # The image is orange but the prompt says another colour: only the image is flagged.
    disguised = [CurationItem(f"{i:064x}", e.image, e.caption.replace("orange", "red")) for i, e in enumerate(orange)]
    verdicts = curator.curate_batch(disguised)
    image_flagged = sum(any(f.where == "image" for f in v.flags) for v in verdicts) / len(verdicts)
    prompt_flagged = sum(any(f.where == "prompt" for f in v.flags) for v in verdicts) / len(verdicts)
    assert image_flagged >= 0.8, image_flagged
    assert prompt_flagged <= 0.1, prompt_flagged
    assert all(v.decision is Decision.REJECT for v in verdicts if v.flags)
    # An orange prompt is flagged whatever the image.
    asked = curator.curate_batch([CurationItem("a" * 64, plain[0].image, "two small orange squares at the top")])
    assert any(f.where == "prompt" and f.concept == "orange" for f in asked[0].flags)
    assert "moderation: the prompt matches the blocked concept 'orange'" in asked[0].reason
    clean = curator.curate_batch([CurationItem(f"{i:064x}", e.image, e.caption) for i, e in enumerate(plain)])
    assert sum(bool(v.flags) for v in clean) / len(clean) <= 0.1


def test_copies_of_accepted_assets_are_flagged_and_other_pictures_are_not(clip):
    curator = Curator(clip, CurationPolicy(accept_at=-1.0, review_at=-1.0))
    originals = items("test", 4, 150)
    first = curator.curate_batch(originals)
    assert not any(v.duplicate_of for v in first), "distinct pictures are not copies of each other"
    assert len(curator.index) == 150
    copies = []
    for i, item in enumerate(originals[:40]):
        image = item.image
        variant = [image, jpeg(image), ImageEnhance.Brightness(image).enhance(1.1), image.resize((64, 64))][i % 4]
        copies.append(CurationItem(f"c{i:063x}", variant, item.prompt))
    flagged = curator.curate_batch(copies)
    hits = [v.duplicate_of == o.digest for v, o in zip(flagged, originals, strict=False)]
    assert sum(hits) / len(hits) >= 0.9, sum(hits)
    assert all(v.decision is Decision.REJECT for v in flagged if v.duplicate_of)
    assert all(
        v.reason.startswith(f"a near-duplicate of the accepted asset 0x{v.duplicate_of}")
        for v in flagged
        if v.duplicate_of
    )
    # The same composition drawn again (another layout) is a new picture, not a copy.
    held = list(examples("test", 4, 40))
    redrawn = [CurationItem(f"d{i:063x}", render(e.composition, e.seed + 1), e.caption) for i, e in enumerate(held)]
    assert sum(v.duplicate_of is not None for v in curator.curate_batch(redrawn)) <= 2


def test_perceptual_hash_survives_re_encoding_but_not_a_new_layout():
    e = next(examples("test", 5, 1))
    base = perceptual_hash(e.image)
    assert hash_distance(base, perceptual_hash(jpeg(e.image))) <= 6
    assert hash_distance(base, perceptual_hash(e.image.resize((96, 96)))) <= 6
    assert base == perceptual_hash(e.image.copy())


def test_a_job_curated_again_after_a_crash_is_not_its_own_duplicate(clip, tmp_path):
    policy = CurationPolicy(accept_at=-1.0, review_at=-1.0)
    first = Curator(clip, policy)
    [original] = items("test", 9, 1)
    item = CurationItem(original.digest, original.image, original.prompt, key="job-1")
    assert first.curate_batch([item])[0].duplicate_of is None
    path = tmp_path / "index.npz"
    first.index.save(path)  # the index outlived the crash; the journal did not record the verdict
    again = Curator(clip, policy, index=EmbeddingIndex.load(path, 32))
    assert again.curate_batch([item])[0].duplicate_of is None  # the same job, retried
    copy = CurationItem(original.digest, original.image, original.prompt, key="job-2")
    assert again.curate_batch([copy])[0].duplicate_of == original.digest  # another job's copy is flagged


def test_the_index_persists_and_refuses_the_wrong_shape(clip, tmp_path):
    curator = Curator(clip, CurationPolicy(accept_at=-1.0, review_at=-1.0))
    originals = items("test", 6, 5)
    curator.curate_batch(originals)
    path = tmp_path / "index.npz"
    curator.index.save(path)
    restored = EmbeddingIndex.load(path, 32)
    assert len(restored) == 5
    again = Curator(clip, CurationPolicy(accept_at=-1.0, review_at=-1.0), index=restored)
    assert again.curate_batch([CurationItem("e" * 64, originals[2].image, "x")])[0].duplicate_of == originals[2].digest
    assert len(EmbeddingIndex.load(tmp_path / "none.npz", 32)) == 0
    with pytest.raises(CuratorError, match="expected"):
        EmbeddingIndex.load(path, 64)
    (tmp_path / "junk.npz").write_bytes(b"not numpy")
    with pytest.raises(CuratorError, match="not an embedding index"):
        EmbeddingIndex.load(tmp_path / "junk.npz", 32)
    with pytest.raises(CuratorError, match="the index holds 64-d"):
        Curator(clip, CurationPolicy(), index=EmbeddingIndex(64))
    with pytest.raises(CuratorError, match="3 values"):
        EmbeddingIndex(32).add("x", [0.0, 1.0, 0.0], 0)


def test_the_embedding_is_what_the_zk_head_commits_to(clip):
    (verdict,) = Curator(clip, CurationPolicy(), remember=False).curate_batch(items("test", 7, 1))
    assert len(verdict.embedding) == 32
    assert abs(sum(v * v for v in verdict.embedding) - 1.0) < 1e-4
    scale = PinnedSettings().input_scale
    commitment = input_commitment(HeadInput(verdict.embedding, bytes.fromhex(verdict.digest)), scale)
    assert 0 < commitment < FIELD_MODULUS
    # The commitment hashes the content digest after the embedding: the same embedding under
    # another digest is another commitment.
    assert input_commitment(HeadInput(verdict.embedding, bytes(32)), scale) != commitment


@pytest.mark.chain
def test_the_registry_binds_the_publishers_commitment_of_a_curated_image(clip, project, chain, accounts):
    """The record of a curated image (digest = sha256 of its bytes) registered with the commitment
    the publisher computes from the curator's embedding stores as its input binding
    keccak256(abi.encode(uint256(keccak256(digest)) >> 3, commitment)), which `zkml.evm.input_binding`
    computes the same: what the prover's proof will be checked against."""
    example = next(examples("test", 9, 1))
    image = jpeg(example.image)
    digest = hashlib.sha256(image).digest()
    (verdict,) = Curator(clip, CurationPolicy(), remember=False).curate_batch(
        [CurationItem(digest.hex(), image, example.caption)]
    )
    commitment = commitment_of(verdict.embedding, bytes.fromhex(verdict.digest), PinnedSettings().input_scale)
    assert commitment == input_commitment(HeadInput(verdict.embedding, digest), PinnedSettings().input_scale)

    deployer, developer, creator = accounts[0], accounts[1], accounts[3]
    deployed = {d.name: d.address for d in deploy_core(project, deployer, chain)}
    models = project.ModelRegistry.at(deployed["ModelRegistry"])
    provenance = project.ProvenanceRegistry.at(deployed["ProvenanceRegistry"])
    model_id = register_model(models, developer, label="tiny-sd")
    record = asset_record("curated", creator, model_id, commitment=commitment.to_bytes(32, "big"))
    register_asset(provenance, creator, dataclasses.replace(record, content_digest=digest))

    by_hand = keccak(encode(["uint256", "uint256"], [int.from_bytes(keccak(digest), "big") >> 3, commitment]))
    assert int(provenance.PROVEN_DIGEST_BITS()) == PROVEN_DIGEST_BITS
    assert input_binding(digest, commitment) == by_hand
    assert bytes(provenance.getAsset(digest).inputBinding) == by_hand


def test_bad_policies_and_items_are_refused(clip, tmp_path):
    with pytest.raises(CuratorError, match="above accept_at"):
        CurationPolicy(accept_at=0.2, review_at=0.5)
    with pytest.raises(CuratorError, match="cosine similarity"):
        CurationPolicy(duplicate_at=1.5)
    with pytest.raises(CuratorError, match="empty"):
        CurationPolicy(blocked=(" ",))
    with pytest.raises(CuratorError, match="both blocked and allowed"):
        CurationPolicy(blocked=("red",), allowed=("red",))
    with pytest.raises(CuratorError, match="hash_bits"):
        CurationPolicy(duplicate_hash_bits=65)
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"accept_at": 0.9, "blocked": ["orange"], "allowed": ["red"]}))
    assert CurationPolicy.from_json(policy_file) == CurationPolicy(accept_at=0.9, blocked=("orange",), allowed=("red",))
    policy_file.write_text(json.dumps({"accept": 0.9}))
    with pytest.raises(CuratorError, match="unknown policy keys"):
        CurationPolicy.from_json(policy_file)
    policy_file.write_text(json.dumps({"blocked": "orange"}))
    with pytest.raises(CuratorError, match="list of strings"):
        CurationPolicy.from_json(policy_file)
    policy_file.write_text("{")
    with pytest.raises(CuratorError, match="not a readable JSON"):
        CurationPolicy.from_json(policy_file)
    with pytest.raises(CuratorError, match="not an image"):
        Curator(clip, CurationPolicy()).curate_batch([CurationItem("f" * 64, b"\x89PNG broken", "x")])
    assert Curator(clip, CurationPolicy()).curate_batch([]) == []


@pytest.mark.asyncio
async def test_curation_runs_off_the_event_loop():
    curator = await Curator.load(CLIP, CurationPolicy())
    try:
        async with loop_ticks(0.002) as ticks:
            verdicts = await curator.curate(items("test", 8, 256))
    finally:
        curator.close()
    assert len(verdicts) == 256
    assert ticks.count > 3


@pytest.mark.asyncio
async def test_a_clip_model_that_cannot_load_is_one_curator_error(tmp_path):
    not_weights = tmp_path / "weights.bin"
    not_weights.write_bytes(b"not a checkpoint")
    cases = {
        "local-dir:/missing": "no open_clip model folder at /missing",
        "no-such-model": "not found",
        f"ViT-B-32@{not_weights}": "cannot load",
    }
    for name, why in cases.items():
        with pytest.raises(CuratorError, match="cannot load the open_clip model") as raised:
            await Curator.load(name, CurationPolicy())
        message = str(raised.value)
        assert why in message and "\n" not in message and len(message) < 400 and "--clip takes" in message


def test_blocked_terms_match_whole_words_in_any_case_or_letter_form():
    policy = CurationPolicy(blocked_terms=("gore", "child abuse"))
    assert [f.concept for f in policy.term_flags("A GORE-soaked square")] == ["gore"]
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "gore")  # NFKC folds it back to "gore"
    assert [f.concept for f in policy.term_flags(f"{fullwidth} in fullwidth letters")] == ["gore"]
    assert [f.concept for f in policy.term_flags("child   abuse, spaced out")] == ["child abuse"]
    for clean in ("a gorey stew", "Gregorean chant", "two small red circles", "childhood abuses"):
        assert policy.term_flags(clean) == [], clean
    flags = policy.term_flags("gore")
    assert policy.describe(flags) == "moderation: the prompt contains the blocked term 'gore'"


def test_the_shipped_policy_loads_and_bad_policy_files_are_one_clear_error(tmp_path):
    from agents.app.wiring import DEFAULT_POLICY

    shipped = CurationPolicy.from_json(Path(__file__).resolve().parents[3] / DEFAULT_POLICY)
    assert shipped.blocked_terms and shipped.accept_at == CurationPolicy().accept_at
    assert shipped.term_flags("a naked red square") and not shipped.term_flags("two small blue circles")
    cases = {
        '{"blocked_terms": "gore"}': "blocked_terms is a list of strings",
        '{"blocked_terms": [" "]}': "a blocked term is empty",
        '{"colour": "red"}': "unknown policy keys",
        '{"accept_at": "high"}': "",
        "not json": "not a readable JSON policy",
    }
    for text, why in cases.items():
        bad = tmp_path / "policy.json"
        bad.write_text(text)
        with pytest.raises(CuratorError, match=why):
            CurationPolicy.from_json(bad)


def test_prompts_are_screened_by_terms_and_by_concepts_before_any_image(clip):
    others = tuple(c for c in COLOURS if c != "orange")
    policy = CurationPolicy(blocked=("orange",), allowed=others, prompt_moderation_at=0.0, blocked_terms=("nude",))
    curator = Curator(clip, policy, remember=False)
    screened = curator.screen_batch(
        ["two small orange squares at the top", "a nude figure", "three large blue circles on the left"]
    )
    assert [bool(s.reason) for s in screened] == [True, True, False]
    assert "the prompt matches the blocked concept 'orange'" in screened[0].reason
    assert screened[1].reason.startswith("moderation: the prompt contains the blocked term 'nude'")
    assert screened[2].flags == () and screened[2].reason == ""
    # an item curated without screening is still refused for its prompt's terms
    verdict = curator.curate_batch(
        [CurationItem("e" * 64, items("test", 5, 1)[0].image, "a nude figure over a plain black background")]
    )[0]
    assert verdict.decision is Decision.REJECT and "blocked term 'nude'" in verdict.reason


@pytest.fixture(scope="module")
def head() -> HeadModel:
    return HeadModel.load(ROOT / HEAD_FOLDER)


def test_with_the_curation_head_the_proven_score_decides(clip, head):
    """The curator's decision is the head's fixed-point score (ezkl's arithmetic on the stored row)
    in the head's bands: matched captions accepted, another image's caption rejected, the reason
    names the head's score, and the verdict carries the row the input commitment hashes."""
    curator = Curator(clip, CurationPolicy(), remember=False, head=head)
    matched = curator.curate_batch(items("test", 11, 64))
    shifted = curator.curate_batch(items("test", 11, 64, caption=lambda i, held: held[(i + 7) % 64].caption))
    for verdict in (*matched, *shifted):
        row = head_row(verdict.embedding, verdict.prompt_embedding)
        assert len(row) == head.embed_dim == 64 and verdict.score == head.scores([row])[0]
        assert verdict.decision.value == head.verdict(verdict.score)
        assert f"the curation head scores {head.real(verdict.score):.3f}" in verdict.reason
    assert sum(v.decision is Decision.ACCEPT for v in matched) >= 0.95 * 64
    assert sum(v.decision is Decision.REJECT for v in shifted) >= 0.8 * 64
    # the row as the journal keeps it (JSON) gives the same score: nothing is lost on the way
    stored = json.loads(json.dumps(head_row(matched[0].embedding, matched[0].prompt_embedding)))
    assert head.scores([stored])[0] == matched[0].score
    # moderation still rejects whatever the head says
    flagged = Curator(clip, CurationPolicy(blocked_terms=("background",)), remember=False, head=head)
    (verdict,) = flagged.curate_batch(items("test", 11, 1))
    assert verdict.decision is Decision.REJECT and verdict.reason.startswith("moderation:")


def test_a_head_for_another_embedding_width_is_refused(clip, head, tmp_path):
    narrow = dataclasses.replace(
        head, state={k: v[..., :16] if k == "net.0.weight" else v for k, v in head.state.items()}
    )
    with pytest.raises(CuratorError, match="reads 16 values, but this CLIP makes 32-d"):
        Curator(clip, CurationPolicy(), head=narrow)
    with pytest.raises(HeadError, match="not a curation head folder"):
        HeadModel.load(tmp_path)
    with pytest.raises(HeadError, match="a head row has 64 values, not 3"):
        head.scores([[0.1, 0.2, 0.3]])
    with pytest.raises(HeadError, match="not curated by the curation head"):
        payload_row({"embedding": [0.1] * 32})


def test_the_index_finds_what_a_brute_force_search_finds_and_grows_without_copying_itself(tmp_path):
    import numpy as np

    rng = np.random.default_rng(7)
    rows = rng.normal(size=(3_000, 8)).astype(np.float32)
    index = EmbeddingIndex(8)
    for i, row in enumerate(rows):
        index.add(f"d{i}", row.tolist(), i, owner=f"job{i % 3}")
    index.add("d0", rows[1].tolist(), 0)  # a digest it knows: ignored
    assert len(index) == 3_000
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    for query in rng.normal(size=(20, 8)).astype(np.float32):
        scores = unit @ query
        expected = [
            (f"d{i}", float(scores[i]), i)
            for i in np.argsort(-scores, kind="stable")
            if scores[i] >= 0.5 and i % 3 != 1
        ][:16]
        found = index.neighbours(query.tolist(), 0.5, exclude_owner="job1")
        assert [(d, h) for d, _, h in found] == [(d, h) for d, _, h in expected]
        assert np.allclose([s for _, s, _ in found], [s for _, s, _ in expected])
    index.save(tmp_path / "index.npz")
    again = EmbeddingIndex.load(tmp_path / "index.npz", 8)
    again.add("new", rows[5].tolist(), 1)
    assert len(again) == 3_001 and again.neighbours(rows[5].tolist(), 0.999)[0][0] in ("d5", "new")


def test_an_image_a_whole_multiple_of_clips_side_is_box_reduced_to_it_first() -> None:
    from PIL import Image

    from agents.models.curator import _at_side, _input_side

    class Visual:
        image_size = (32, 32)

    class Model:
        visual = Visual()

    class Clip:
        model = Model()

    assert _input_side(Clip()) == 32 and _input_side(object()) is None
    # a 64 x 64 upscale whose 2 x 2 blocks are one colour each comes back as exactly its base
    base = Image.frombytes("RGB", (32, 32), bytes(range(256)) * 12)
    big = base.resize((64, 64), Image.Resampling.NEAREST)
    assert _at_side(big, 32).tobytes() == base.tobytes()
    for left_alone in (base, Image.new("RGB", (48, 48)), Image.new("RGB", (64, 32)), Image.new("RGB", (16, 16))):
        assert _at_side(left_alone, 32) is left_alone  # its own side, not a multiple, not square, smaller
    assert _at_side(big, None) is big


def test_rows_curated_in_batches_stand_against_each_image_embedded_alone_as_verify_does(clip):
    """The curator embeds a batch, `proofmint verify` one image (`agents.app.audit._embed`): float
    rounding differs by about 1e-7, enough to carry a value lying that near a quantisation step to
    the next integer (2 rows of 512 on the machine this was written on, so recomputing the
    commitment exactly failed such a genuine asset). The row the metadata publishes (`headInput`,
    the integers the commitment hashes) stands for every one: a value may round the other way only
    when it lies within float rounding of a step (`agents.app.audit.ROUNDING_SLACK`)."""
    import torch

    from agents.app.audit import published_head_input
    from zkml.pipeline import quantized

    scale = PinnedSettings().input_scale
    held = items("test", 21, 256)
    curator = Curator(clip, CurationPolicy(), remember=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the agents' curator and the audit run
    try:
        verdicts = [v for start in range(0, len(held), 32) for v in curator.curate_batch(held[start : start + 32])]
        moved = 0
        for item, verdict in zip(held, verdicts, strict=True):
            published = {
                "inputScale": scale,
                "values": quantized(head_row(verdict.embedding, verdict.prompt_embedding), scale),
            }
            alone = head_row(curator.embed_images([item.image])[0], curator.embed_prompts([item.prompt])[0])
            checked = published_head_input(published, alone, scale, bytes.fromhex(verdict.digest))
            assert checked.commitment == commitment_of(
                head_row(verdict.embedding, verdict.prompt_embedding), bytes.fromhex(verdict.digest), scale
            )  # the publisher's commitment: the integers published are the ones it hashed
            moved += checked.moved
    finally:
        torch.set_num_threads(threads)
    assert moved <= 8, f"{moved} values rounded the other way: more than float rounding makes"


def test_a_save_appends_what_is_new_and_rewrites_the_whole_index_only_when_its_log_is_due(tmp_path):
    """`EmbeddingIndex.save` writes the entries added since the last save to a log beside the
    snapshot, and the whole index again once the log holds as many entries as the snapshot (at
    least 1,024); what a load reads back is the index, rows bit for bit, whichever files hold
    it: after a crash between the snapshot and the emptying of its log, and with the log's last
    line cut short (that entry is left out, and the next save writes the whole index)."""
    import numpy as np

    rng = np.random.default_rng(5)
    rows = rng.normal(size=(3_000, 8)).astype(np.float32)
    path = tmp_path / "index.npz"
    log = EmbeddingIndex.log_of(path)
    index = EmbeddingIndex(8)

    def add(start: int, stop: int) -> None:
        for i in range(start, stop):
            index.add(f"d{i}", rows[i].tolist(), i, owner=f"job{i}")

    def same(loaded: EmbeddingIndex, count: int) -> None:
        assert len(loaded) == count and loaded._digests == index._digests[:count]
        assert loaded._hashes == index._hashes[:count] and loaded._owners == index._owners[:count]
        assert np.array_equal(loaded._rows, index._rows[:count])

    add(0, 64)
    index.save(path)  # the first save: a snapshot, an empty log
    snapshot = path.read_bytes()
    assert log.read_text() == ""
    for batch in range(1, 17):  # 16 batches of 64 after it: appended, the snapshot untouched
        add(64 * batch, 64 * (batch + 1))
        index.save(path)
        if batch < 16:
            assert path.read_bytes() == snapshot and len(log.read_text().splitlines()) == 64 * batch
            same(EmbeddingIndex.load(path, 8), 64 * (batch + 1))
    assert path.read_bytes() != snapshot and log.read_text() == ""  # 1,024 in the log: all written again
    same(EmbeddingIndex.load(path, 8), 1_088)
    index.save(path)  # nothing new: nothing written
    assert log.read_text() == ""

    add(1_088, 1_100)
    index.save(path)
    kept_log = log.read_text()
    add(1_100, 2_200)
    index.save(path)  # due: the whole index again
    log.write_text(kept_log)  # as if it crashed before emptying the log: its entries are known
    same(EmbeddingIndex.load(path, 8), 2_200)

    log.write_text(kept_log + kept_log.splitlines(keepends=True)[0][:-30])  # a last line cut short
    reloaded = EmbeddingIndex.load(path, 8)
    same(reloaded, 2_200)
    reloaded.add("after", rows[2_500].tolist(), 7)
    reloaded.save(path)  # after a cut line: the whole index, not a line glued to the cut one
    assert log.read_text() == ""
    assert len(EmbeddingIndex.load(path, 8)) == 2_201

    log.write_text(json.dumps({"digest": "x", "hash": "00", "owner": "", "row": [0.0] * 3}) + "\n")
    with pytest.raises(CuratorError, match="an entry has"):
        EmbeddingIndex.load(path, 8)
