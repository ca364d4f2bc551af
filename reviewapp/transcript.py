"""Turn stored OpenAI-format messages into a simple shape templates can show, each text already
rendered by `reviewapp.rendering` (bounded in time and size, escaped or sanitised)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from reviewapp.rendering import MarkdownBudget, json_html, text_html

# Roles whose text is the agent's standing instructions rather than a turn of the conversation.
SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass
class ToolCallView:
    id: str
    name: str
    arguments: Any
    arguments_html: SafeString = field(default_factory=lambda: mark_safe(""))


@dataclass
class TurnView:
    index: int
    role: str
    name: str
    text: str
    parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCallView] = field(default_factory=list)
    tool_call_id: str = ""
    body: SafeString = field(default_factory=lambda: mark_safe(""))

    @property
    def is_system(self) -> bool:
        return self.role in SYSTEM_ROLES


def _text_of(content: Any) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    if isinstance(content, list):
        texts, others = [], []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text") or ""))
            elif isinstance(part, dict):
                others.append(str(part.get("type", "part")))
        return "\n\n".join(texts), others
    return "", []


def transcript_turns(messages: list[dict[str, Any]]) -> list[TurnView]:
    """The turns of a transcript, rendered. One markdown budget covers the whole transcript, so
    the page costs a bounded time however many hostile messages it has."""
    budget = MarkdownBudget()
    turns: list[TurnView] = []
    for index, message in enumerate(messages or []):
        if not isinstance(message, dict):
            continue
        text, parts = _text_of(message.get("content"))
        calls = []
        for call in message.get("tool_calls") or []:
            if not isinstance(call, dict):
                continue
            function = call.get("function") or {}
            if not isinstance(function, dict):
                function = {}
            arguments = function.get("arguments", "")
            calls.append(
                ToolCallView(
                    id=str(call.get("id") or ""),
                    name=str(function.get("name") or ""),
                    arguments=arguments,
                    arguments_html=json_html(arguments),
                )
            )
        role = str(message.get("role", ""))
        turns.append(
            TurnView(
                index=index,
                role=role,
                name=str(message.get("name") or ""),
                text=text,
                parts=parts,
                tool_calls=calls,
                tool_call_id=str(message.get("tool_call_id") or ""),
                body=(json_html(text) if role == "tool" else text_html(text, budget=budget)) if text else mark_safe(""),
            )
        )
    return turns


def first_user_text(messages: list[dict[str, Any]], limit: int = 140) -> str:
    for message in messages or []:
        if isinstance(message, dict) and message.get("role") == "user":
            text, _ = _text_of(message.get("content"))
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""
