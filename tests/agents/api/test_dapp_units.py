"""The dApp's server side that needs no chain: the built files served under /app/ and nothing
else (traversal, hidden files, a missing build say so in the API's JSON error shape), free
previews, and originators' tree files for data-share proofs; plus the dApp's sources written
the safe way (no HTML from strings: prompts are anyone's input)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from agents.api.accounts import load_tree_file
from agents.api.dapp import CSP, DappFiles, to_app
from agents.api.errors import json_errors
from agents.api.preview import Previews, make_preview
from agents.core.merkle import DataTree
from agents.core.toolchain import project_root

ORIGINATORS = [("0x" + "aa" * 20, 600_000), ("0x" + "bb" * 20, 400_000)]


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(out, format="PNG")
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_previews_are_half_size_but_never_below_the_floor_and_refuse_non_images():
    assert size_of(make_preview(png(64, 64))) == (32, 32)
    assert size_of(make_preview(png(64, 48))) == (32, 24)
    assert size_of(make_preview(png(24, 24))) == (24, 24)  # halving would go below 16: kept
    assert size_of(make_preview(png(40, 40))) == (20, 20)
    with pytest.raises(ValueError, match="not an image"):
        make_preview(b"\x89PNG but not really")


@pytest.mark.asyncio
async def test_previews_are_cached_per_asset():
    previews = Previews(capacity=1)
    first = await previews.get(b"a", png(64, 64))
    assert await previews.get(b"a", b"ignored: cached") == first
    await previews.get(b"b", png(32, 32))  # evicts "a"
    with pytest.raises(ValueError):
        await previews.get(b"a", b"not cached any more")


def _built(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>proofmint</title>")
    (folder / "app.js").write_text("console.log('proofmint')")
    (folder / "app.css").write_text("body{}")
    (folder / ".proofmint-stamp").write_text("secret-ish")
    (tmp_path / "outside.txt").write_text("not served")
    return folder


async def _client(folder: Path) -> TestClient:
    app = web.Application(middlewares=[json_errors])
    files = DappFiles(folder)
    app.router.add_get("/", to_app)
    app.router.add_get("/app/", files.handle)
    app.router.add_get("/app/{name}", files.handle)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.mark.asyncio
async def test_the_dapp_files_are_served_with_a_strict_policy_and_nothing_else(tmp_path: Path):
    client = await _client(_built(tmp_path))
    try:
        response = await client.get("/", allow_redirects=False)
        assert response.status == 302 and response.headers["Location"] == "/app/"
        for path, kind in (("/app/", "text/html"), ("/app/app.js", "text/javascript"), ("/app/app.css", "text/css")):
            response = await client.get(path)
            assert response.status == 200, path
            assert response.content_type == kind
            assert response.headers["Content-Security-Policy"] == CSP
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "script-src 'self'" in CSP and "unsafe" not in CSP
        for path in ("/app/.proofmint-stamp", "/app/..%2Foutside.txt", "/app/%2e%2e%2foutside.txt", "/app/nope.js"):
            response = await client.get(path)
            assert response.status == 404, path
            body = await response.json()
            assert body["error"]["status"] == 404 and "not served" not in await response.text()
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_an_unbuilt_dapp_is_a_503_that_says_how_to_build_it(tmp_path: Path):
    client = await _client(tmp_path / "missing")
    try:
        response = await client.get("/app/")
        assert response.status == 503
        error = (await response.json())["error"]
        assert error["code"] == "dapp_not_built" and "make setup" in error["message"]
    finally:
        await client.close()


def _tree_file(tmp_path: Path, **changes: object) -> Path:
    tree = DataTree(ORIGINATORS)
    payload = {
        "modelId": 1,
        "chainId": 31337,
        "root": "0x" + tree.root.hex(),
        "originators": {a: {"weight": w, "proof": ["0x" + p.hex() for p in tree.proof(a)]} for a, w in tree.shares},
    }
    payload.update(changes)
    path = tmp_path / "data.csv.tree.json"
    path.write_text(json.dumps(payload))
    return path


def test_tree_files_load_only_when_their_originators_hash_to_their_root(tmp_path: Path):
    model_id, tree = load_tree_file(_tree_file(tmp_path))
    assert model_id == 1 and tree.root == DataTree(ORIGINATORS).root
    with pytest.raises(ValueError, match="do not hash to the root"):
        load_tree_file(_tree_file(tmp_path, root="0x" + "00" * 32))
    with pytest.raises(ValueError, match="not a data tree file"):
        load_tree_file(_tree_file(tmp_path, originators={"0x" + "aa" * 20: {"weight": 5}}))  # weights != 1e6
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    with pytest.raises(ValueError, match="not a data tree file"):
        load_tree_file(bad)


def test_the_dapp_builds_its_page_without_html_strings():
    """Prompts and every other text reach the page as text nodes (dom.ts); nothing parses HTML."""
    sources = sorted((project_root() / "dapp" / "src").rglob("*.ts"))
    assert sources
    for path in sources:
        text = path.read_text(encoding="utf8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{path.name} uses {sink}"
