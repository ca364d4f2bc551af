"""The ingestion contract, validated with pydantic v2.

DRF serializers cost about 1 ms per conversation, which alone would cap a 2-core box well below
the ingest target; pydantic's Rust core validates a 1,000-item batch in a few milliseconds.
Errors are turned into the API's one error shape (`conversations[3].messages[0].role`) by
`errors_from_pydantic`, so clients cannot tell which validator ran.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

Str100 = Annotated[str, StringConstraints(max_length=100)]
Str255 = Annotated[str, StringConstraints(max_length=255)]
NonEmpty100 = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class _Open(BaseModel):
    # OpenAI's message format keeps growing (refusal, audio, annotations): keep unknown keys.
    model_config = ConfigDict(extra="allow")


class _Strict(BaseModel):
    # Our own envelope rejects unknown keys so a typo ("judge_score") is an error, not data loss.
    model_config = ConfigDict(extra="forbid")


class FunctionCall(_Open):
    name: str
    arguments: str | dict[str, Any] = ""


class ToolCall(_Open):
    id: str | None = None
    type: str = "function"
    function: FunctionCall


class ContentPart(_Open):
    type: str
    text: str | None = None


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _has_something(self) -> Message:
        if self.content is None and not self.tool_calls:
            raise ValueError("a message needs content or tool_calls")
        return self


class JudgeScoreIn(_Strict):
    judge: NonEmpty100
    judge_version: Str100 = ""
    criterion: NonEmpty100
    score: float | None = Field(default=None, allow_inf_nan=False)
    label: Str100 = ""
    confidence: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    reasoning: Annotated[str, StringConstraints(max_length=20_000)] = ""

    @model_validator(mode="after")
    def _score_or_label(self) -> JudgeScoreIn:
        if self.score is None and not self.label:
            raise ValueError("a judge score needs a score or a label")
        return self


class FeedbackIn(_Strict):
    rating: Literal["up", "down"] | None = None
    comment: Annotated[str, StringConstraints(max_length=10_000)] = ""
    user_rephrased: bool = False
    escalated_by_user: bool = False


class ConversationIn(_Strict):
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)]
    messages: Annotated[list[Message], Field(min_length=1, max_length=2_000)]
    occurred_at: dt.datetime | None = None
    agent_version: Str100 = ""
    end_user_id: Str255 = ""
    tags: Annotated[list[Tag], Field(max_length=50)] = []
    metadata: dict[str, Any] = {}
    judge_scores: Annotated[list[JudgeScoreIn], Field(max_length=200)] = []
    feedback: FeedbackIn | None = None

    _raw_messages: list[dict[str, Any]] | None = PrivateAttr(default=None)

    def messages_json(self) -> list[dict[str, Any]]:
        if self._raw_messages is not None:
            return self._raw_messages
        return [m.model_dump(mode="json", exclude_none=True) for m in self.messages]

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        # A timestamp without a zone is taken as UTC rather than the server's local time.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class ConversationBatchIn(_Strict):
    project: str | None = None
    conversations: Annotated[list[ConversationIn], Field(min_length=1)]


class JudgeScoreForConversationIn(JudgeScoreIn):
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)]


class JudgeScoreBatchIn(_Strict):
    project: str | None = None
    judge_scores: Annotated[list[JudgeScoreForConversationIn], Field(min_length=1)]


def loc_to_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "non_field_errors"


def errors_from_pydantic(exc: ValidationError, *, prefix: tuple[int | str, ...] = ()) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False, include_input=False):
        # Union members report each alternative (`content.str`, `content.list[...]`); keep the
        # path a client sent, not pydantic's internal branch names.
        loc = tuple(p for p in err["loc"] if p not in {"str", "list[ContentPart]", "dict[str,any]"})
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        errors.setdefault(loc_to_path(prefix + loc), []).append(message)
    return errors


def attach_raw_messages(models: list[ConversationIn], raw_items: list[dict[str, Any]]) -> None:
    """Keep the client's own message dicts next to the validated model: they were checked
    already, and re-serialising thousands of pydantic objects per batch would cost more than
    validating them did."""
    for model, raw in zip(models, raw_items, strict=True):
        model._raw_messages = raw["messages"]
