"""Provenance manifests and metadata (manifest.py), signed and read back by the c2pa SDK (credentials.py)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from agents.storage.cid import RAW, Cid
from agents.storage.credentials import (
    CredentialError,
    DevIdentity,
    SidecarSigner,
    active_manifest,
    read_sidecar,
    sign_sidecar,
)
from agents.storage.manifest import (
    PROVENANCE_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    Parent,
    Provenance,
    c2pa_definition,
    canonical_json,
    erc721_metadata,
)


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _provenance(png: bytes, parents: list[bytes] = (), **changes: object) -> Provenance:  # type: ignore[assignment]
    fields: dict[str, object] = {
        "image": Cid.of(png, RAW),
        "sha256": hashlib.sha256(png).digest(),
        "model": "proofmint/tiny-t2i",
        "model_version": "1",
        "weights_digest": "ab" * 32,
        "prompt": "a large red circle on the left over a plain black background",
        "negative_prompt": "",
        "seed": 7,
        "parameters": {"steps": 25, "guidance": 3.0, "scheduler": "DDIMScheduler"},
        "params_digest": bytes(range(32)),
        "width": 32,
        "height": 32,
        "curation": {"alignment": 0.91, "decision": "accept"},
        "parents": [Parent(Cid.of(p, RAW), hashlib.sha256(p).digest()) for p in parents],
        "proof": {"verifier": "0x" + "11" * 20, "tx": "0x" + "22" * 32},
    }
    fields.update(changes)
    return Provenance(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> DevIdentity:
    return DevIdentity.load_or_create(tmp_path_factory.mktemp("identity"))


def test_definition_uses_c2pa_vocabulary():
    definition = c2pa_definition(_provenance(_png((255, 0, 0)), [_png((0, 0, 255))]))
    actions = definition["assertions"][0]
    assert actions["label"] == "c2pa.actions"
    created = actions["data"]["actions"][0]
    assert created["action"] == "c2pa.created" and created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert created["parameters"]["seed"] == 7
    assert definition["ingredients"][0]["relationship"] == "parentOf"


def test_metadata_points_at_image_and_manifest_by_ipfs_uri():
    image = _png((255, 0, 0))
    provenance = _provenance(image)
    manifest = Cid.of(b"manifest", RAW)
    metadata = erc721_metadata(provenance, name="proofmint #1", manifest=manifest)
    assert metadata["image"] == f"ipfs://{provenance.image}"
    assert metadata["properties"]["c2paManifest"] == f"ipfs://{manifest}"
    assert metadata["properties"]["sha256"] == hashlib.sha256(image).hexdigest()
    assert {"trait_type": "zk attested", "value": "yes"} in metadata["attributes"]
    assert canonical_json(metadata) == canonical_json(dict(reversed(list(metadata.items()))))


def test_bad_provenance_is_refused():
    image = _png((1, 2, 3))
    with pytest.raises(ValueError, match="32-byte"):
        _provenance(image, sha256=b"short")
    with pytest.raises(ValueError, match="sha256"):
        _provenance(image, image=Cid.of(b"other", RAW))
    with pytest.raises(ValueError, match="characters"):
        _provenance(image, prompt="x" * 2_001)


def test_signed_sidecar_validates_against_the_unchanged_image(identity: DevIdentity):
    parent, image = _png((0, 0, 255)), _png((255, 0, 0))
    definition = c2pa_definition(_provenance(image, [parent]))
    manifest = sign_sidecar(definition, image, identity, parents=[(definition["ingredients"][0], parent)])
    report = read_sidecar(image, manifest, trust_anchors=identity.ca_pem)
    assert report["proofmint_trusted"] is True
    active = active_manifest(report)
    labels = [a["label"] for a in active["assertions"]]
    assert PROVENANCE_LABEL in labels and any(label.startswith("c2pa.actions") for label in labels)
    provenance = next(a for a in active["assertions"] if a["label"] == PROVENANCE_LABEL)["data"]
    assert provenance["sha256"] == hashlib.sha256(image).hexdigest()
    assert active["ingredients"][0]["relationship"] == "parentOf"
    assert read_sidecar(image, manifest)["proofmint_trusted"] is False  # no anchors: valid, untrusted


def test_one_signer_signs_many_manifests_from_several_threads_each_for_its_own_image(identity: DevIdentity):
    """The publisher keeps one `SidecarSigner` (its C2PA signer made once per thread): every
    manifest it signs, from any thread, validates for its own image and for no other."""
    from concurrent.futures import ThreadPoolExecutor

    signer = SidecarSigner(identity)
    images = [_png((i, 255 - i, 7)) for i in range(12)]
    with ThreadPoolExecutor(3) as pool:
        manifests = list(pool.map(lambda image: signer.sign(c2pa_definition(_provenance(image)), image), images))
    for i, (image, manifest) in enumerate(zip(images, manifests, strict=True)):
        report = read_sidecar(image, manifest, trust_anchors=identity.ca_pem)
        provenance = next(a for a in active_manifest(report)["assertions"] if a["label"] == PROVENANCE_LABEL)
        assert provenance["data"]["sha256"] == hashlib.sha256(image).hexdigest()
        with pytest.raises(CredentialError, match="dataHash"):
            read_sidecar(images[(i + 1) % len(images)], manifest)


def test_sidecar_rejects_another_image_a_foreign_ca_and_garbage(identity: DevIdentity):
    image = _png((255, 0, 0))
    manifest = sign_sidecar(c2pa_definition(_provenance(image)), image, identity)
    with pytest.raises(CredentialError, match="dataHash"):
        read_sidecar(_png((254, 0, 0)), manifest)
    with pytest.raises(CredentialError, match="untrusted"):
        read_sidecar(image, manifest, trust_anchors=DevIdentity.create("stranger").ca_pem)
    with pytest.raises(CredentialError, match="not a valid"):
        read_sidecar(image, manifest[: len(manifest) // 2])
    with pytest.raises(CredentialError, match="not a valid"):
        read_sidecar(image, b"not a manifest")


def test_identity_is_made_once_and_reused(tmp_path: Path):
    first = DevIdentity.load_or_create(tmp_path)
    assert DevIdentity.load_or_create(tmp_path) == first
    assert oct((tmp_path / "key.pem").stat().st_mode & 0o777) == "0o600"


def test_metadata_names_are_cut_at_a_word_boundary():
    from agents.storage.manifest import metadata_name

    prompt = "three small orange triangles in the top left corner over a plain navy background"
    name = metadata_name(prompt, 7)
    assert name == "three small orange triangles in the top left corner over a… (seed 7)"
    assert len(name.split(" (seed")[0]) <= 60 and prompt.startswith(name.split("…")[0])
    assert metadata_name("a red circle", 1) == "a red circle (seed 1)"
    assert metadata_name("x" * 80, 2) == "x" * 59 + "… (seed 2)"  # one long word: cut where it must be
