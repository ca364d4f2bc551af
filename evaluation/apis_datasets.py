"""Golden datasets over the API. Engineers and admins write (`datasets.write`); they and a
project's key (a CI job) read (`datasets.read`), the key only its own project's datasets.
Another organization's dataset, item or version is a 404."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation import dataset_items
from evaluation import selectors_datasets as selectors
from evaluation import services_datasets as services
from evaluation.models import Dataset, DatasetItem, DatasetVersion, DatasetVersionItem, GateMode, Split
from reviewapp import services as core_services
from reviewapp.fields import BoundedJSONField, IdField
from reviewapp.pagination import IdCursorPagination
from reviewapp.permissions import principal_of
from reviewapp.serializers import ERROR_RESPONSE

READ = "datasets.read"
WRITE = "datasets.write"
TAGS = ["datasets"]


def _in_order() -> IdCursorPagination:
    """Oldest first (items in the order they were added; a version's items in key order, the
    order they were copied in), `limit` up to 500, follow `next`."""
    return IdCursorPagination(ordering="id", page_size=100, max_page_size=500)


def _dataset(request: Request, dataset_id: int) -> Dataset:
    p = principal_of(request)
    return selectors.dataset_get(organization=p.organization, dataset_id=dataset_id, project=p.project)


def _body(serializer_class: type[serializers.Serializer], request: Request, **kwargs: Any) -> dict[str, Any]:
    body = serializer_class(data=request.data, **kwargs)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


class TagField(serializers.CharField):
    def __init__(self, **kwargs: Any):
        super().__init__(max_length=dataset_items.TAG_MAX_CHARS, **kwargs)


def _tags(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(child=TagField(), max_length=dataset_items.TAGS_MAX, **kwargs)


# --- Output -----------------------------------------------------------------------------------


class DatasetOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(source="project.slug")
    name = serializers.CharField()
    description = serializers.CharField()
    gate_pass_rate = serializers.FloatField()
    gate_critical_pass_rate = serializers.FloatField()
    gate_mode = serializers.ChoiceField(choices=GateMode.choices)
    gate_confidence = serializers.FloatField()
    gate_require_not_worse = serializers.BooleanField()
    promotion_rules = serializers.ListField(child=serializers.DictField())
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    conversation = serializers.IntegerField(source="conversation_id", allow_null=True)
    queue_item = serializers.IntegerField(source="queue_item_id", allow_null=True)
    input_messages = serializers.ListField(child=serializers.DictField())
    reference_output = serializers.JSONField(allow_null=True)
    expected_labels = serializers.DictField()
    critical = serializers.BooleanField()
    tags = serializers.ListField(child=serializers.CharField())
    split = serializers.ChoiceField(choices=Split.choices)
    lineage = serializers.DictField()
    content_hash = serializers.CharField()


class WorkingItemOutputSerializer(ItemOutputSerializer):
    added_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class VersionOutputSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    content_hash = serializers.CharField(help_text="SHA-256 over the items' (key, content_hash), in key order.")
    item_count = serializers.IntegerField()
    critical_count = serializers.IntegerField()
    tags = serializers.ListField(child=serializers.CharField())
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


def _page(name: str, item: serializers.Serializer) -> serializers.Serializer:
    return inline_serializer(
        name,
        fields={
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null on the last."),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )


# --- Datasets ---------------------------------------------------------------------------------


class DatasetFilterSerializer(serializers.Serializer):
    project = serializers.SlugField(required=False, max_length=100)


class DatasetSettingsSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=services.NAME_MAX, required=False)
    description = serializers.CharField(max_length=services.DESCRIPTION_MAX, required=False, allow_blank=True)
    gate_pass_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    gate_critical_pass_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    gate_mode = serializers.ChoiceField(choices=GateMode.choices, required=False)
    gate_confidence = serializers.FloatField(
        min_value=0, max_value=1, required=False, help_text="Strictly between 0 and 1."
    )
    gate_require_not_worse = serializers.BooleanField(required=False)
    promotion_rules = BoundedJSONField(
        required=False,
        help_text='[{"queue": "<queue name>", "if": {"answers": {"quality": "good"}, "agreement": '
        '"unanimous"|"any"}, "critical": false, "tags": ["..."]}], at most 50.',
    )


class DatasetCreateSerializer(DatasetSettingsSerializer):
    project = serializers.SlugField(required=False, max_length=100, help_text="Required with a personal token.")
    name = serializers.CharField(max_length=services.NAME_MAX)


class DatasetsApi(APIView):
    """`GET` lists the organization's datasets (`?project=` narrows); `POST` creates one."""

    required_capability = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="v1_datasets_list",
        parameters=[DatasetFilterSerializer],
        responses={200: DatasetOutputSerializer(many=True), 400: ERROR_RESPONSE},
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        p = principal_of(request)
        params = DatasetFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        project = p.project
        if project is None and params.validated_data.get("project"):
            project = core_services.project_resolve(principal=p, slug=params.validated_data["project"])
        qs = selectors.dataset_list(organization=p.organization, project=project)
        return Response(DatasetOutputSerializer(qs[:1000], many=True).data)

    @extend_schema(
        request=DatasetCreateSerializer,
        responses={201: DatasetOutputSerializer, 400: ERROR_RESPONSE},
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        p = principal_of(request)
        values = _body(DatasetCreateSerializer, request)
        project = core_services.project_resolve(principal=p, slug=values.pop("project", None))
        dataset = services.dataset_create(project=project, values=values, actor=p.user)
        return Response(DatasetOutputSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(APIView):
    """`GET` one dataset; `PATCH` any of its settings."""

    required_capability = {"GET": READ, "PATCH": WRITE}

    @extend_schema(responses={200: DatasetOutputSerializer, 404: ERROR_RESPONSE}, tags=TAGS)
    def get(self, request: Request, dataset_id: int) -> Response:
        return Response(DatasetOutputSerializer(_dataset(request, dataset_id)).data)

    @extend_schema(
        request=DatasetSettingsSerializer,
        responses={200: DatasetOutputSerializer, 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        tags=TAGS,
    )
    def patch(self, request: Request, dataset_id: int) -> Response:
        dataset = _dataset(request, dataset_id)
        values = _body(DatasetSettingsSerializer, request)
        return Response(DatasetOutputSerializer(services.dataset_update(dataset=dataset, values=values)).data)


class PromoteOutputSerializer(serializers.Serializer):
    matched = serializers.IntegerField(help_text="Final items a rule matched.")
    added = serializers.ListField(child=serializers.CharField(), help_text="Keys of the items added now.")
    existing = serializers.IntegerField(help_text="Matched items already in the dataset.")


class DatasetPromoteApi(APIView):
    """Apply the dataset's promotion rules to every final item of the queues they name, now
    (the same rules also run by themselves when an item of such a queue becomes final)."""

    required_capability = {"POST": WRITE}

    @extend_schema(request=None, responses={200: PromoteOutputSerializer, 404: ERROR_RESPONSE}, tags=TAGS)
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = _dataset(request, dataset_id)
        result = services.dataset_promote(dataset=dataset, actor=principal_of(request).user)
        return Response(
            {"matched": result.matched, "added": [i.key for i in result.added], "existing": result.existing}
        )


# --- Items ------------------------------------------------------------------------------------


class ItemEntrySerializer(serializers.Serializer):
    queue_item = IdField(help_text="A queue item of the dataset's project with a final label.")
    critical = serializers.BooleanField(required=False, default=False)
    tags = _tags(required=False, default=list)
    key = serializers.RegexField(
        dataset_items.KEY_PATTERN.pattern,
        max_length=64,
        required=False,
        help_text="Default: the first 16 hex digits of SHA-256 of 'conversation:<external_id>'.",
    )


class ItemsAddSerializer(serializers.Serializer):
    items = serializers.ListField(child=ItemEntrySerializer(), min_length=1, max_length=services.ITEMS_PER_REQUEST)


class ItemsAddOutputSerializer(serializers.Serializer):
    added = WorkingItemOutputSerializer(many=True)
    existing = WorkingItemOutputSerializer(many=True, help_text="Already in the dataset: not added again.")


class DatasetItemsApi(APIView):
    """`GET` the working set (paginated); `POST` promotes final queue items into it."""

    required_capability = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="v1_dataset_items_list",
        parameters=[
            inline_serializer(
                "DatasetItemsPageParams",
                fields={
                    "cursor": serializers.CharField(required=False),
                    "limit": serializers.IntegerField(required=False, min_value=1, max_value=500),
                },
            )
        ],
        responses={
            200: _page("DatasetItemPage", WorkingItemOutputSerializer(many=True)),
            400: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
        tags=TAGS,
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = _dataset(request, dataset_id)
        paginator = _in_order()
        page = paginator.paginate_queryset(selectors.dataset_item_list(dataset=dataset), request, view=self)
        return paginator.get_paginated_response(WorkingItemOutputSerializer(page, many=True).data)

    @extend_schema(
        request=ItemsAddSerializer,
        description=(
            'Send `{"items": [{"queue_item": <id>, "critical": true, "tags": [...]}, ...]}` (at most 500). '
            "An item with no final label yet refuses the request with 400 naming `items[i].queue_item`; "
            "an item already in the dataset (same queue item or same key) is answered in `existing`."
        ),
        responses={200: ItemsAddOutputSerializer, 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        tags=TAGS,
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = _dataset(request, dataset_id)
        values = _body(ItemsAddSerializer, request)
        result = services.dataset_items_add(
            dataset=dataset,
            entries=[services.ItemEntry(**entry) for entry in values["items"]],
            actor=principal_of(request).user,
        )
        return Response(
            {
                "added": WorkingItemOutputSerializer(result.added, many=True).data,
                "existing": WorkingItemOutputSerializer(result.existing, many=True).data,
            }
        )


class ItemUpdateSerializer(serializers.Serializer):
    critical = serializers.BooleanField(required=False)
    tags = _tags(required=False)
    split = serializers.ChoiceField(choices=Split.choices, required=False)


class DatasetItemDetailApi(APIView):
    """`PATCH` a working item's critical, tags or split; `DELETE` removes it. Frozen versions
    keep their copies either way."""

    required_capability = {"PATCH": WRITE, "DELETE": WRITE}

    def _item(self, request: Request, dataset_id: int, dataset_item_id: int) -> DatasetItem:
        return selectors.dataset_item_get(dataset=_dataset(request, dataset_id), item_id=dataset_item_id)

    @extend_schema(
        request=ItemUpdateSerializer,
        responses={200: WorkingItemOutputSerializer, 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        tags=TAGS,
    )
    def patch(self, request: Request, dataset_id: int, dataset_item_id: int) -> Response:
        item = self._item(request, dataset_id, dataset_item_id)
        values = _body(ItemUpdateSerializer, request)
        return Response(WorkingItemOutputSerializer(services.dataset_item_update(item=item, values=values)).data)

    @extend_schema(responses={204: None, 404: ERROR_RESPONSE}, tags=TAGS)
    def delete(self, request: Request, dataset_id: int, dataset_item_id: int) -> Response:
        services.dataset_item_remove(item=self._item(request, dataset_id, dataset_item_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Versions ---------------------------------------------------------------------------------


class FreezeSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=services.NOTE_MAX, required=False, default="", allow_blank=True)


class DatasetVersionsApi(APIView):
    """`GET` the versions, newest first; `POST` freezes the working set into the next number."""

    required_capability = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="v1_dataset_versions_list",
        responses={200: VersionOutputSerializer(many=True), 404: ERROR_RESPONSE},
        tags=TAGS,
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = _dataset(request, dataset_id)
        return Response(VersionOutputSerializer(selectors.dataset_version_list(dataset=dataset)[:1000], many=True).data)

    @extend_schema(
        request=FreezeSerializer,
        responses={201: VersionOutputSerializer, 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        tags=TAGS,
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = _dataset(request, dataset_id)
        values = _body(FreezeSerializer, request)
        version = services.dataset_version_freeze(
            dataset=dataset, note=values["note"], actor=principal_of(request).user
        )
        return Response(VersionOutputSerializer(version).data, status=status.HTTP_201_CREATED)


def _version(request: Request, dataset_id: int, number: int) -> DatasetVersion:
    return selectors.dataset_version_get(dataset=_dataset(request, dataset_id), number=number)


class DatasetVersionDetailApi(APIView):
    """One version with its frozen items, a page at a time (key order)."""

    required_capability = READ

    @extend_schema(
        parameters=[
            inline_serializer(
                "DatasetVersionPageParams",
                fields={
                    "cursor": serializers.CharField(required=False),
                    "limit": serializers.IntegerField(required=False, min_value=1, max_value=500),
                },
            )
        ],
        responses={
            200: inline_serializer(
                "DatasetVersionWithItems",
                fields={
                    **VersionOutputSerializer().fields,
                    "items": _page("DatasetVersionItemPage", ItemOutputSerializer(many=True)),
                },
            ),
            400: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
        },
        tags=TAGS,
    )
    def get(self, request: Request, dataset_id: int, number: int) -> Response:
        version = _version(request, dataset_id, number)
        paginator = _in_order()
        page: list[DatasetVersionItem] = (
            paginator.paginate_queryset(
                selectors.dataset_version_items(version=version).order_by("id"), request, view=self
            )
            or []
        )
        items = paginator.get_paginated_response(ItemOutputSerializer(page, many=True).data).data
        return Response({**VersionOutputSerializer(version).data, "items": items})


class VersionTagsSerializer(serializers.Serializer):
    tags = _tags(help_text="A tag names at most one version of a dataset: it moves here from another.")


class DatasetVersionTagsApi(APIView):
    """`POST` adds tags to a version; `PUT` sets its tags to exactly these. Either way a tag
    (`prod`) leaves any other version of the dataset that carried it."""

    required_capability = {"POST": WRITE, "PUT": WRITE}

    @extend_schema(
        request=VersionTagsSerializer,
        responses={200: VersionOutputSerializer, 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        tags=TAGS,
    )
    def post(self, request: Request, dataset_id: int, number: int) -> Response:
        return self._tag(request, dataset_id, number, replace=False)

    @extend_schema(
        request=VersionTagsSerializer,
        responses={200: VersionOutputSerializer, 400: ERROR_RESPONSE, 404: ERROR_RESPONSE},
        tags=TAGS,
    )
    def put(self, request: Request, dataset_id: int, number: int) -> Response:
        return self._tag(request, dataset_id, number, replace=True)

    def _tag(self, request: Request, dataset_id: int, number: int, *, replace: bool) -> Response:
        version = _version(request, dataset_id, number)
        values = _body(VersionTagsSerializer, request)
        version = services.dataset_version_tag(version=version, tags=values["tags"], replace=replace)
        return Response(VersionOutputSerializer(version).data)


class DatasetVersionCompareApi(APIView):
    """Items added in version `other`, removed from `number`, and changed (by key, with the
    fields that changed)."""

    required_capability = READ

    @extend_schema(
        responses={
            200: inline_serializer(
                "DatasetVersionCompare",
                fields={
                    "a": serializers.IntegerField(),
                    "b": serializers.IntegerField(),
                    "added": serializers.ListField(child=serializers.CharField()),
                    "removed": serializers.ListField(child=serializers.CharField()),
                    "changed": serializers.ListField(
                        child=inline_serializer(
                            "DatasetItemChange",
                            fields={
                                "key": serializers.CharField(),
                                "fields": serializers.ListField(child=serializers.CharField()),
                            },
                        )
                    ),
                },
            ),
            404: ERROR_RESPONSE,
        },
        tags=TAGS,
    )
    def get(self, request: Request, dataset_id: int, number: int, other: int) -> Response:
        dataset = _dataset(request, dataset_id)
        a = selectors.dataset_version_get(dataset=dataset, number=number)
        b = selectors.dataset_version_get(dataset=dataset, number=other)
        return Response(selectors.dataset_version_compare(a=a, b=b))
