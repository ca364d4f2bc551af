"""Queue settings as a client sends them: one serializer for every way in (the queue API, a
project configuration document), so a bound checked in one place is checked in all."""

from __future__ import annotations

from rest_framework import serializers

from labeling.models import SkipPolicy
from labeling.sampling import MAX_PER_DAY
from reviewapp import validation
from reviewapp.fields import BoundedDictField, ColumnIntegerField
from reviewapp.models import Role


class QueueSettingsSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, default="", allow_blank=True)
    annotations_per_item = serializers.IntegerField(min_value=1, max_value=10, default=1)
    max_extra_annotations = serializers.IntegerField(min_value=0, max_value=5, default=0)
    priority = ColumnIntegerField(validation.INTEGER, default=0)
    lease_seconds = serializers.IntegerField(min_value=30, max_value=86_400, default=600)
    # Approvers do not label (they decide agent actions), so they are no queue audience.
    assignee_role = serializers.ChoiceField(choices=[Role.ANNOTATOR, Role.ENGINEER, Role.ADMIN], default=Role.ANNOTATOR)
    show_judge_scores = serializers.BooleanField(default=False)
    skip_policy = serializers.ChoiceField(choices=SkipPolicy.values, default=SkipPolicy.OTHERS)
    sampling = serializers.ListField(child=BoundedDictField(), required=False, default=list, max_length=100)
    max_per_day = serializers.IntegerField(
        min_value=1, max_value=MAX_PER_DAY, required=False, allow_null=True, default=None
    )
    backfill_days = serializers.IntegerField(min_value=0, max_value=365, default=30)
    gold_rate = serializers.FloatField(min_value=0, max_value=1, default=0)
