"""The web app's static routes: content types, caching headers, refused paths, the web_ui switch."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from rag_serving import BEES, KEY, extractive_settings, running_server

from localrag.engine import LocalRAG
from localrag.web.routes import STATIC

pytestmark = pytest.mark.server


@pytest.fixture
def served(tmp_path: Path, fake_embedder):  # type: ignore[no-untyped-def]
    rag = LocalRAG(tmp_path / "data", settings=extractive_settings(api_keys=KEY), embedder=fake_embedder)
    rag.add([BEES])
    with running_server(tmp_path / "data", rag=rag) as url:
        yield url
    rag.close()


def test_index_and_assets_have_their_content_types_and_need_no_key(served: str) -> None:
    index = httpx.get(served + "/")
    assert index.status_code == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/app/js/app.js">' in index.text
    assert index.content == (STATIC / "index.html").read_bytes()
    for path, kind in [("app.css", "text/css"), ("js/app.js", "text/javascript"),
                       ("js/pages/chat.js", "text/javascript"), ("favicon.svg", "image/svg+xml")]:
        r = httpx.get(f"{served}/app/{path}")
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(kind), (path, r.headers["content-type"])
        assert r.content == (STATIC / path).read_bytes()
    # the shell is public, the data is not
    assert httpx.get(served + "/v1/stats").status_code == 401


def test_etag_answers_304_and_every_answer_says_no_cache(served: str) -> None:
    first = httpx.get(served + "/app/js/api.js")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in first.headers["content-security-policy"]
    again = httpx.get(served + "/app/js/api.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = httpx.get(served + "/app/js/api.js", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == first.content
    assert httpx.get(served + "/app/app.css").headers["etag"] != etag


@pytest.mark.parametrize("path", [
    "/app/../routes.py", "/app/%2e%2e/routes.py", "/app/js/..%2f..%2froutes.py", "/app/..%5croutes.py",
    "/app/.hidden", "/app/", "/app/js", "/app/nope.js", "/app/js//app.js", "/app/%2Fetc%2Fpasswd",
])
def test_paths_outside_the_static_folder_are_refused(served: str, path: str) -> None:
    r = httpx.get(served + path)
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert r.headers["content-type"] == "application/json"  # an error body, never a file's bytes
    assert "def router" not in r.text


def test_web_ui_off_serves_no_app(tmp_path: Path, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    settings = extractive_settings(web_ui=False)
    rag = LocalRAG(tmp_path / "data", settings=settings, embedder=fake_embedder)
    with running_server(tmp_path / "data", rag=rag) as url:
        assert httpx.get(url + "/").status_code == 404
        assert httpx.get(url + "/app/app.css").status_code == 404
        assert httpx.get(url + "/healthz").status_code == 200
    rag.close()
