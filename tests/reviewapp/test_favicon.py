"""The icon browsers ask for is there: linked from every page and answered at /favicon.ico."""


def test_favicon_ico_redirects_to_the_served_icon(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert icon["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in b"".join(icon.streaming_content)


def test_pages_link_the_icon(client, db):
    page = client.get("/login/")
    assert b'rel="icon"' in page.content
    assert b"favicon.svg" in page.content
