"""The privacy notice and terms of use the Teams manifest links to are real pages."""

from __future__ import annotations

from adapters.teams.manifest import build_manifest
from tests.web_rig import WebRig, web_fixture  # noqa: F401 (the web rig)


async def test_the_manifests_privacy_and_terms_links_open_pages(web: WebRig) -> None:
    manifest = build_manifest("5e0b6c1a-7d2e-4f3a-9b8c-0d1e2f3a4b5c", web.url)
    for url, words in (
        (manifest["developer"]["privacyUrl"], "Who sees it"),
        (manifest["developer"]["termsOfUseUrl"], "professional learning"),
    ):
        assert url.startswith(web.url)
        async with web.http.get(url) as response:
            assert response.status == 200
            assert words in await response.text()
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
