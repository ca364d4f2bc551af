"""Turn stored OpenAI-format messages into a simple shape templates can show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCallView:
    id: str
    name: str
    arguments: Any


@dataclass
class TurnView:
    index: int
    role: str
    name: str
    text: str
    parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCallView] = field(default_factory=list)
    tool_call_id: str = ""


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
            calls.append(
                ToolCallView(
                    id=str(call.get("id") or ""),
                    name=str(function.get("name") or ""),
                    arguments=function.get("arguments", ""),
                )
            )
        turns.append(
            TurnView(
                index=index,
                role=str(message.get("role", "")),
                name=str(message.get("name") or ""),
                text=text,
                parts=parts,
                tool_calls=calls,
                tool_call_id=str(message.get("tool_call_id") or ""),
            )
        )
    return turns


def first_user_text(messages: list[dict[str, Any]], limit: int = 140) -> str:
    for message in messages or []:
        if isinstance(message, dict) and message.get("role") == "user":
            text, _ = _text_of(message.get("content"))
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""
