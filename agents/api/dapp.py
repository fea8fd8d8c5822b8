"""The dApp's files (built by tools/build-dapp.mjs into dapp/dist at set-up) under `/app/`.

Only the files of that folder are served (no directory listings, no paths outside it); every
page gets a strict Content-Security-Policy (the page loads only its own script and style, and
talks only to this API; the wallet is an extension, outside the page's CSP)."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aiohttp import web

from agents.api.errors import ApiError

PREFIX = "/app/"
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".map": "application/json"}


def default_dir() -> Path:
    from agents.core.toolchain import project_root

    return project_root() / "dapp" / "dist"


class DappFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()

    def _file(self, name: str) -> Path:
        if not (self.folder / "index.html").is_file():
            raise ApiError(503, f"the dApp is not built in {self.folder}: run `make setup`", code="dapp_not_built")
        if name in ("", "index.html"):
            return self.folder / "index.html"
        if name.startswith(".") or "/" in name or "\\" in name or "\x00" in name:
            raise ApiError(404, f"no file {name[:80]} in the dApp")
        path = self.folder / name
        if path.parent != self.folder or not path.is_file():
            raise ApiError(404, f"no file {name[:80]} in the dApp")
        return path

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = self._file(request.match_info.get("name", ""))
        kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        headers = {
            "Content-Type": f"{kind}; charset=utf-8" if kind.startswith("text/") else kind,
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            # the page is small and names its script and style without a hash: always revalidate
            "Cache-Control": "no-cache",
        }
        return web.FileResponse(path, headers=headers)


async def to_app(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PREFIX)
