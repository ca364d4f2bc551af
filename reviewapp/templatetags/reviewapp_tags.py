"""Template helpers for showing hostile content. Everything from agents and end users passes
through Django's autoescape or through `reviewapp.rendering` (markdown-it-py, then nh3), which
also bounds the time and size of what it renders."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from reviewapp import rendering

register = template.Library()


@register.filter(name="markdown_safe")
def markdown_safe(text: Any) -> SafeString:
    """Markdown to sanitised HTML (no scripts, event handlers, images or non-http links); plain
    escaped text when it is too large or too dense in markup to parse in bounded time."""
    return rendering.text_html(text)


@register.filter(name="pretty_json")
def pretty_json(value: Any) -> str:
    """Indented JSON as plain text, or the text as it was when it is not JSON or nests too
    deep; the template's autoescape makes it safe to show."""
    return rendering.pretty_json(value)
