"""Labeling JSON API, one module per capability: rubrics, queues (with items and gold checks
added by hand), items (the claim, labels, leases, skips, drafts, comments), review, statistics.

Every view and serializer is re-exported here, so `labeling.urls_api` names `apis.QueueClaimApi`."""

from labeling.apis.budgets import ProjectBudgetApi, QueueBudgetControllerApi
from labeling.apis.items import (
    ClaimOutputSerializer,
    ItemCommentApi,
    ItemDetailApi,
    ItemDraftApi,
    ItemLabelSubmitApi,
    ItemLeaseApi,
    ItemSkipApi,
    LabelOutputSerializer,
    QueueClaimApi,
    SchemaForItemSerializer,
    item_payload_for_worker,
)
from labeling.apis.queues import (
    QueueDetailApi,
    QueueDetailSerializer,
    QueueGoldAddApi,
    QueueItemsAddApi,
    QueueListCreateApi,
    QueueOutputSerializer,
    QueueSamplingUpdateApi,
)
from labeling.apis.review import ItemReviewApi, QueueReviewListApi
from labeling.apis.rubrics import (
    LabelSchemaDetailApi,
    LabelSchemaListCreateApi,
    LabelSchemaOutputSerializer,
    LabelSchemaVersionCreateApi,
    QuestionSerializer,
    RubricInputSerializer,
    SchemaVersionSerializer,
)
from labeling.apis.statistics import QueueAgreementApi, QueueAnnotatorsApi, QueueStatisticsRefreshApi

__all__ = [
    "ClaimOutputSerializer",
    "ItemCommentApi",
    "ItemDetailApi",
    "ItemDraftApi",
    "ItemLabelSubmitApi",
    "ItemLeaseApi",
    "ItemReviewApi",
    "ItemSkipApi",
    "LabelOutputSerializer",
    "LabelSchemaDetailApi",
    "LabelSchemaListCreateApi",
    "LabelSchemaOutputSerializer",
    "LabelSchemaVersionCreateApi",
    "ProjectBudgetApi",
    "QuestionSerializer",
    "QueueAgreementApi",
    "QueueAnnotatorsApi",
    "QueueBudgetControllerApi",
    "QueueClaimApi",
    "QueueDetailApi",
    "QueueDetailSerializer",
    "QueueGoldAddApi",
    "QueueItemsAddApi",
    "QueueListCreateApi",
    "QueueOutputSerializer",
    "QueueReviewListApi",
    "QueueSamplingUpdateApi",
    "QueueStatisticsRefreshApi",
    "RubricInputSerializer",
    "SchemaForItemSerializer",
    "SchemaVersionSerializer",
    "item_payload_for_worker",
]
