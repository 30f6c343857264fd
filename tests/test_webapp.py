"""`/app`: the page's files come from the package, with a strict CSP, and nothing else."""

from __future__ import annotations


async def test_page_and_assets_are_served_with_a_strict_policy(gateway):
    """index.html, app.js and app.css: right types, CSP self-only, no auth needed."""
    for path, kind in (
        ("/app/", "text/html"),
        ("/app/app.js", "text/javascript"),
        ("/app/app.css", "text/css"),
    ):
        resp = await gateway.get(path)
        assert resp.status == 200, path
        assert resp.content_type == kind
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp
        assert "script-src 'self'" in csp
        assert "http" not in csp  # no CDN anywhere
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    html = await (await gateway.get("/app/")).text()
    assert '<script src="app.js"' in html
    assert "https://" not in html


async def test_app_redirects_to_its_folder_and_serves_nothing_else(gateway):
    """`/app` redirects to `/app/`; other names (and traversal) are 404."""
    resp = await gateway.get("/app", allow_redirects=False)
    assert resp.status == 301
    assert resp.headers["Location"] == "/app/"
    for name in ("secret.txt", "..%2Fapp.py", "index.htm"):
        assert (await gateway.get(f"/app/{name}")).status == 404
