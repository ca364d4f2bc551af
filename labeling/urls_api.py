from django.urls import path

from labeling import apis
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

urlpatterns = [
    path("label-schemas", apis.LabelSchemaListCreateApi.as_view(), name="label-schemas"),
    path("label-schemas/<id:schema_id>", apis.LabelSchemaDetailApi.as_view(), name="label-schema-detail"),
    path(
        "label-schemas/<id:schema_id>/versions",
        apis.LabelSchemaVersionCreateApi.as_view(),
        name="label-schema-versions",
    ),
    path("projects/<id:project_id>/budget", apis.ProjectBudgetApi.as_view(), name="project-budget"),
    path("queues", apis.QueueListCreateApi.as_view(), name="queues"),
    path("queues/<id:queue_id>", apis.QueueDetailApi.as_view(), name="queue-detail"),
    path("queues/<id:queue_id>/sampling", apis.QueueSamplingUpdateApi.as_view(), name="queue-sampling"),
    path(
        "queues/<id:queue_id>/budget-controller",
        apis.QueueBudgetControllerApi.as_view(),
        name="queue-budget-controller",
    ),
    path("queues/<id:queue_id>/items", apis.QueueItemsAddApi.as_view(), name="queue-items"),
    path("queues/<id:queue_id>/gold", apis.QueueGoldAddApi.as_view(), name="queue-gold"),
    path("queues/<id:queue_id>/claim", apis.QueueClaimApi.as_view(), name="queue-claim"),
    path("queues/<id:queue_id>/review", apis.QueueReviewListApi.as_view(), name="queue-review"),
    path("queues/<id:queue_id>/agreement", apis.QueueAgreementApi.as_view(), name="queue-agreement"),
    path(
        "queues/<id:queue_id>/agreement/refresh",
        apis.QueueStatisticsRefreshApi.as_view(),
        name="queue-statistics-refresh",
    ),
    path("queues/<id:queue_id>/annotators", apis.QueueAnnotatorsApi.as_view(), name="queue-annotators"),
    path("items/<id:item_id>", apis.ItemDetailApi.as_view(), name="item-detail"),
    path("items/<id:item_id>/labels", apis.ItemLabelSubmitApi.as_view(), name="item-labels"),
    path("items/<id:item_id>/lease", apis.ItemLeaseApi.as_view(), name="item-lease"),
    path("items/<id:item_id>/skip", apis.ItemSkipApi.as_view(), name="item-skip"),
    path("items/<id:item_id>/draft", apis.ItemDraftApi.as_view(), name="item-draft"),
    path("items/<id:item_id>/comments", apis.ItemCommentApi.as_view(), name="item-comments"),
    path("items/<id:item_id>/review", apis.ItemReviewApi.as_view(), name="item-review"),
]
