"""The page scripts share one copy of their helpers (static/reviewapp/app.js), and every page
that runs a script using them loads app.js first. The browser tests drive the POSTs these
helpers sign (label, skip, the system-prompt preference)."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

STATIC = Path(settings.BASE_DIR) / "static"
TEMPLATES = Path(settings.BASE_DIR) / "templates"
DEFINES_CSRF = re.compile(r"function\s+csrfToken\s*\(|csrfToken\s*=\s*function")
USES_SHARED = re.compile(r"window\.reviewapp\.")


def _scripts() -> dict[str, str]:
    return {str(path.relative_to(STATIC)): path.read_text() for path in sorted(STATIC.rglob("*.js"))}


def test_the_csrf_token_helper_is_written_once_in_app_js():
    defined_in = [name for name, text in _scripts().items() if DEFINES_CSRF.search(text)]

    assert defined_in == ["reviewapp/app.js"]


def test_pages_running_scripts_that_use_app_js_load_it_before_them():
    users = {name for name, text in _scripts().items() if USES_SHARED.search(text) and name != "reviewapp/app.js"}
    assert users == {"labeling/labeling.js", "reviewapp/transcript.js"}
    base = (TEMPLATES / "base.html").read_text()
    head = base.split("</head>", 1)[0]
    # In <head> and deferred: it runs before the body's deferred scripts, in document order.
    assert re.search(r"<script src=\"{% static 'reviewapp/app.js' %}\" defer></script>", head)
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for name in users:
            if f"'{name}'" not in text:
                continue
            assert text.lstrip().startswith('{% extends "base.html" %}'), f"{template} loads {name} without base.html"
            assert re.search(rf"<script src=\"{{% static '{re.escape(name)}' %}}\" defer></script>", text), (
                f"{template} loads {name} without defer: it would run before app.js"
            )
