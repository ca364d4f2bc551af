"""factory_boy factories for the core models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from reviewapp.models import Conversation, JudgeScore, Membership, Organization, Project, Role

DEFAULT_PASSWORD = "correct-horse-battery"


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    organization = factory.SubFactory(OrganizationFactory)
    slug = factory.Sequence(lambda n: f"project{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.ENGINEER


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    project = factory.SubFactory(ProjectFactory)
    organization = factory.LazyAttribute(lambda o: o.project.organization)
    external_id = factory.Sequence(lambda n: f"conv-{n}")
    messages = factory.LazyFunction(
        lambda: [
            {"role": "user", "content": "Where is my refund?"},
            {"role": "assistant", "content": "Your refund was issued on Monday."},
        ]
    )
    agent_version = "v1"


class JudgeScoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JudgeScore

    conversation = factory.SubFactory(ConversationFactory)
    judge = "gpt-judge"
    criterion = "correctness"
    score = 0.8


def conversation_payload(external_id: str = "ext-1", **overrides: object) -> dict:
    """A valid ingestion payload for one conversation, OpenAI chat format with a tool call."""
    body: dict = {
        "external_id": external_id,
        "messages": [
            {"role": "system", "content": "You are an airline support agent."},
            {"role": "user", "content": "I want a refund for booking ABC123."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup_booking", "arguments": '{"booking": "ABC123"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "cancelled", "fare": 450}'},
            {"role": "assistant", "content": "Your refund of $450 is on its way."},
        ],
        "occurred_at": "2026-11-20T10:00:00Z",
        "agent_version": "v2",
        "end_user_id": "customer-812",
        "tags": ["refund"],
        "metadata": {"channel": "web"},
        "judge_scores": [
            {"judge": "gpt-judge", "judge_version": "1", "criterion": "correctness", "score": 0.9, "confidence": 0.8}
        ],
        "feedback": {"rating": "up"},
    }
    body.update(overrides)
    return body
