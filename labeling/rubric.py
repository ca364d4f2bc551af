"""Rubric questions and answer validation. Pure: no ORM, so it is tested without a database."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

QUESTION_TYPES = ("single_choice", "multi_choice", "rating", "boolean", "text", "turn")
TEXT_MAX = 10_000

Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Option = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Key
    type: Literal["single_choice", "multi_choice", "rating", "boolean", "text", "turn"]
    label: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    help: Annotated[str, StringConstraints(max_length=2000)] = ""
    required: bool = True
    # validate_default: the checks below must also run when the field is left out, so that
    # "a rating without max" is reported on `max`, the field a client has to fix.
    options: list[Option] = Field(default_factory=list, max_length=50, validate_default=True)
    # Bounded like every integer from outside (reviewapp/validation.py): a scale's ends fit 32 bits.
    min: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1, validate_default=True)
    max: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1, validate_default=True)
    # For `turn`: which roles may be pointed at (default: assistant turns).
    roles: list[Literal["system", "developer", "user", "assistant", "tool"]] = Field(default_factory=list)
    judge_criterion: Annotated[str, StringConstraints(max_length=100)] | None = None
    # How a judge's verdict and a human's answer meet (evaluation's calibration pairs): a judge
    # label in `judge_pass_labels`, or a score at or above `judge_pass_threshold`, passes; a
    # human answer passes when it is one of `passing_options` (choices), true (boolean), or at
    # least `passing_min` (rating). Declared after the fields they are checked against.
    judge_pass_labels: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20
    )
    judge_pass_threshold: float | None = Field(default=None, ge=-1e9, le=1e9, allow_inf_nan=False)
    passing_options: list[Option] = Field(default_factory=list, max_length=50)
    passing_min: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)

    # Field validators (not one model validator) so each error is reported on its own field:
    # `questions[0].options`, not `questions[0]`. `info.data` holds the fields declared above
    # the one being checked that were valid; with an invalid `type` these checks stand aside.
    @field_validator("options")
    @classmethod
    def _options_fit_type(cls, options: list[str], info: ValidationInfo) -> list[str]:
        qtype = info.data.get("type")
        if qtype in ("single_choice", "multi_choice"):
            if len(options) < 2:
                raise ValueError("choice questions need at least two options")
            if len(set(options)) != len(options):
                raise ValueError("options must be unique")
        elif options and qtype is not None:
            raise ValueError(f"{qtype} questions take no options")
        return options

    @field_validator("min", "max")
    @classmethod
    def _bounds_fit_type(cls, value: int | None, info: ValidationInfo) -> int | None:
        qtype = info.data.get("type")
        if qtype is None:
            return value
        if qtype != "rating":
            if value is not None:
                raise ValueError("only rating questions take min and max")
            return value
        if value is None:
            raise ValueError("rating questions need min and max")
        low = info.data.get("min")
        if info.field_name == "max" and low is not None:
            if low >= value:
                raise ValueError("min must be below max")
            if value - low > 100:
                raise ValueError("a rating scale has at most 101 points")
        return value

    @field_validator("passing_options")
    @classmethod
    def _passing_options_fit(cls, passing: list[str], info: ValidationInfo) -> list[str]:
        if not passing:
            return passing
        if info.data.get("type") not in ("single_choice", "multi_choice"):
            raise ValueError("only choice questions take passing_options")
        unknown = [o for o in passing if o not in info.data.get("options", [])]
        if unknown:
            raise ValueError(f"not among the options: {', '.join(unknown)}")
        return passing

    @field_validator("passing_min")
    @classmethod
    def _passing_min_fits(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None:
            return value
        if info.data.get("type") != "rating":
            raise ValueError("only rating questions take passing_min")
        low, high = info.data.get("min"), info.data.get("max")
        if low is not None and high is not None and not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}")
        return value

    @model_validator(mode="after")
    def _default_roles(self) -> Question:
        if self.type == "turn" and not self.roles:
            self.roles = ["assistant"]
        return self

    @property
    def level(self) -> str:
        """Measurement level for agreement: ratings are ordinal, the rest nominal."""
        return "ordinal" if self.type == "rating" else "nominal"

    @property
    def comparable(self) -> bool:
        """Free text is not compared for agreement; every other type is."""
        return self.type != "text"

    def categories(self) -> list[Any] | None:
        if self.type in ("single_choice",):
            return list(self.options)
        if self.type == "rating":
            return list(range(self.min or 0, (self.max or 0) + 1))
        if self.type == "boolean":
            return [False, True]
        return None


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    instructions: Annotated[str, StringConstraints(max_length=50_000)] = ""
    questions: list[Question] = Field(min_length=1, max_length=50)

    @field_validator("questions")
    @classmethod
    def _unique_keys(cls, questions: list[Question]) -> list[Question]:
        keys = [q.key for q in questions]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"question keys must be unique; repeated: {', '.join(dupes)}")
        return questions


def human_passes(q: Question, answer: Any) -> bool | None:
    """Does a final human answer pass `q`? None when the question does not say (no passing
    options or minimum declared where one is needed) or the answer is missing."""
    if answer is None or answer == "" or answer == []:
        return None
    if q.type == "boolean":
        return answer is True
    if q.type == "rating":
        if q.passing_min is None or isinstance(answer, bool) or not isinstance(answer, int):
            return None
        return answer >= q.passing_min
    if q.type == "single_choice" and q.passing_options:
        return answer in q.passing_options
    if q.type == "multi_choice" and q.passing_options and isinstance(answer, list):
        # Every option chosen must pass: one failing mark fails the answer.
        return all(option in q.passing_options for option in answer)
    return None


def judge_passes(q: Question, *, score: float | None, label: str) -> bool | None:
    """Does a judge's verdict pass `q`? The label decides when the question names pass labels
    and the judge sent one (compared case-insensitively); else the score against the threshold;
    else None (the pair is kept, without a binary verdict)."""
    if q.judge_pass_labels and label:
        return label.casefold() in {value.casefold() for value in q.judge_pass_labels}
    if q.judge_pass_threshold is not None and score is not None:
        return score >= q.judge_pass_threshold
    return None


def questions_from_json(data: list[dict[str, Any]]) -> list[Question]:
    return [Question.model_validate(q) for q in data]


def answers_validate(
    questions: list[Question], answers: Any, *, turn_roles: list[str] | None = None, partial: bool = False
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Check answers against a schema version. Returns (clean answers, errors by field path).

    `turn_roles` is the role of each message of the conversation, to check `turn` answers.
    With `partial` (drafts), missing required answers are not errors.
    """
    if not isinstance(answers, dict):
        return {}, {"answers": ["Send an object of answers keyed by question key."]}
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    known = {q.key for q in questions}
    for key in answers:
        if key not in known:
            errors[f"answers.{key}"] = ["No such question in this schema version."]
    for q in questions:
        path = f"answers.{q.key}"
        value = answers.get(q.key)
        if value is None or value == "" or value == []:
            if q.required and not partial:
                errors[path] = ["This question is required."]
            continue
        problem = _check(q, value, turn_roles)
        if problem:
            errors[path] = [problem]
        else:
            clean[q.key] = sorted(value, key=q.options.index) if q.type == "multi_choice" else value
    return clean, errors


def _check(q: Question, value: Any, turn_roles: list[str] | None) -> str | None:
    if q.type == "single_choice":
        if not isinstance(value, str) or value not in q.options:
            return f"Choose one of: {', '.join(q.options)}."
    elif q.type == "multi_choice":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "Send a list of options."
        unknown = [v for v in value if v not in q.options]
        if unknown:
            return f"Unknown options: {', '.join(unknown)}."
        if len(set(value)) != len(value):
            return "Options repeat."
    elif q.type == "rating":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"Send a whole number from {q.min} to {q.max}."
        if not (q.min or 0) <= value <= (q.max or 0):
            return f"Must be from {q.min} to {q.max}."
    elif q.type == "boolean":
        if not isinstance(value, bool):
            return "Send true or false."
    elif q.type == "text":
        if not isinstance(value, str):
            return "Send text."
        if len(value) > TEXT_MAX:
            return f"At most {TEXT_MAX} characters."
    elif q.type == "turn":
        if isinstance(value, bool) or not isinstance(value, int):
            return "Send the index of a message of the transcript."
        if turn_roles is not None:
            if not 0 <= value < len(turn_roles):
                return f"No message {value}; the transcript has {len(turn_roles)}."
            if q.roles and turn_roles[value] not in q.roles:
                return f"Message {value} is a {turn_roles[value]} turn; pick a {' or '.join(q.roles)} turn."
    return None


def answers_agree(questions: list[Question], label_answers: list[dict[str, Any]]) -> bool:
    """Do all labels give the same answer on every comparable question?"""
    return not disagreeing_questions(questions, label_answers)


def disagreeing_questions(questions: list[Question], label_answers: list[dict[str, Any]]) -> list[Question]:
    """The comparable questions the labels answer differently (a missing answer differs from any
    given one): the same test as answers_agree, which sends an item to review."""
    return [q for q in questions if q.comparable and len({_normalise(a.get(q.key)) for a in label_answers}) > 1]


@dataclass(frozen=True)
class Consensus:
    """The answer most labels gave to one question: `votes` of the `answered` labels that
    answered it gave it (all of them: unanimous)."""

    value: Any
    votes: int
    answered: int

    @property
    def unanimous(self) -> bool:
        return self.votes == self.answered


def consensus(questions: list[Question], label_answers: list[dict[str, Any]]) -> dict[str, Consensus]:
    """Per comparable question, the answer given by more than half of the labels that answered
    it. A tie, a plurality short of half, a question only one label answered, and free text
    have none: a reviewer decides those from scratch. Used to pre-fill the review form."""
    out: dict[str, Consensus] = {}
    for q in questions:
        if not q.comparable:
            continue
        given = [a[q.key] for a in label_answers if a.get(q.key) is not None]
        if len(given) < 2:
            continue
        counts = Counter(_normalise(v) for v in given)
        top, votes = counts.most_common(1)[0]
        if votes * 2 > len(given):
            value = next(v for v in given if _normalise(v) == top)
            out[q.key] = Consensus(value=value, votes=votes, answered=len(given))
    return out


def _normalise(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def rubric_errors(exc: ValidationError) -> dict[str, list[str]]:
    from reviewapp.ingest_schemas import errors_from_pydantic

    return errors_from_pydantic(exc)


__all__ = [
    "QUESTION_TYPES",
    "Consensus",
    "Question",
    "Rubric",
    "answers_agree",
    "answers_validate",
    "consensus",
    "disagreeing_questions",
    "human_passes",
    "judge_passes",
    "questions_from_json",
]
