"""/openapi.json, /docs and /redoc: guarded by the key when keys are set, and served without a CDN."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from rag_serving import KEY, extractive_settings, running_server

from localrag.engine import LocalRAG

pytestmark = pytest.mark.server
PAGES = ("/openapi.json", "/docs", "/redoc")


def serve_with(tmp_path: Path, fake_embedder: object, **server: object) -> tuple[LocalRAG, object]:
    rag = LocalRAG(tmp_path / "d", settings=extractive_settings(**server), embedder=fake_embedder)  # type: ignore[arg-type]
    return rag, running_server(rag.path, rag=rag)


def test_docs_need_the_key_when_keys_are_set(tmp_path: Path, fake_embedder: object) -> None:
    rag, server = serve_with(tmp_path, fake_embedder, api_keys=KEY)
    with rag, server as url, httpx.Client(base_url=url) as c:  # type: ignore[attr-defined]
        for page in PAGES:
            r = c.get(page)
            assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized_error", (page, r.text)
            assert c.get(page, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200, page


@pytest.mark.parametrize("server", [{}, {"api_keys": KEY, "expose_docs": True}])
def test_docs_pages_load_their_assets_from_the_server(tmp_path: Path, fake_embedder: object,
                                                      server: dict[str, object]) -> None:
    rag, running = serve_with(tmp_path, fake_embedder, **server)
    with rag, running as url, httpx.Client(base_url=url) as c:  # type: ignore[attr-defined]
        assert c.get("/openapi.json").json()["info"]["title"] == "localrag"
        for page in ("/docs", "/redoc"):
            html = c.get(page).text
            links = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
            assert links and not [u for u in links if "://" in u or u.startswith("//")], (page, links)
            for link in links:
                r = c.get(link)
                assert r.status_code == 200 and len(r.content) > 100, (page, link, r.status_code)
        assert "fonts.googleapis" not in c.get("/redoc").text
        assert '"validatorUrl": null' in c.get("/docs").text  # no badge fetched from swagger.io
        assert c.get("/docs/assets/../../server/app.py").status_code == 404
