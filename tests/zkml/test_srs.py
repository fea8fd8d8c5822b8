"""zkml.srs: a generated SRS only for local chains; a live network needs the pinned public one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.zk_support import BATCH, SHAPE
from zkml.curation_head import build_curation_head, export_onnx
from zkml.pipeline import Circuit
from zkml.srs import PINS_PATH, SrsError, SrsPolicy, check_public_srs, load_pins


@pytest.fixture
def srs_file(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "ceremony-17.srs"
    path.write_bytes(b"stand-in bytes: only the sha256 policy is under test here" * 100)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_matching_pin_is_accepted(srs_file):
    path, sha = srs_file
    assert check_public_srs(SrsPolicy.for_live_network(path, pins={17: sha}), 17) == path


def test_a_file_that_does_not_match_the_pin_is_refused(srs_file):
    path, sha = srs_file
    with pytest.raises(SrsError, match=f"has sha256 {sha}.*pinned as {'0' * 64}: refusing it"):
        check_public_srs(SrsPolicy.for_live_network(path, pins={17: "0" * 64}), 17)


def test_no_pin_for_the_logrows_is_refused(srs_file):
    path, sha = srs_file
    with pytest.raises(SrsError, match="no public-ceremony sha256 is pinned for logrows 18"):
        check_public_srs(SrsPolicy.for_live_network(path, pins={17: sha}), 18)


def test_no_file_is_refused_with_the_reason(tmp_path: Path):
    with pytest.raises(SrsError, match=r"not a local development chain.*--srs PATH"):
        check_public_srs(SrsPolicy.for_live_network(None, pins={}), 17)
    with pytest.raises(SrsError, match="does not exist"):
        check_public_srs(SrsPolicy.for_live_network(tmp_path / "absent", pins={17: "0" * 64}), 17)
    with pytest.raises(SrsError, match="local-chain policy"):
        check_public_srs(SrsPolicy.for_local_chain(), 17)


def test_shipped_pin_file_loads_and_bad_ones_are_errors(tmp_path: Path):
    pins = load_pins()
    assert all(isinstance(k, int) and len(v) == 64 for k, v in pins.items())
    assert "logrows" in json.loads(PINS_PATH.read_text())
    bad = tmp_path / "pins.json"
    for text in ("not json", "{}", '{"logrows": {"x": "00"}}', "[]"):
        bad.write_text(text)
        with pytest.raises(SrsError, match="not a readable SRS pin file"):
            load_pins(bad)


def test_building_for_a_live_network_without_a_pinned_srs_stops_before_setup(tmp_path: Path):
    onnx = export_onnx(build_curation_head(SHAPE, seed=1), tmp_path / "head.onnx", batch=BATCH)
    lines: list[str] = []
    with pytest.raises(SrsError, match="no public-ceremony sha256 is pinned"):
        Circuit.build(
            onnx,
            tmp_path / "cache",
            batch=BATCH,
            embed_dim=SHAPE.embed_dim,
            srs=SrsPolicy.for_live_network(tmp_path / "any.srs", pins={}),
            progress=lines.append,
        )
    (root,) = (tmp_path / "cache").iterdir()
    assert not (root / "kzg.srs").exists() and not (root / "pk.key").exists()
    assert lines[-1] == "srs: running"
    assert SrsPolicy.for_live_network(None, pins={}).label != SrsPolicy.for_local_chain().label
