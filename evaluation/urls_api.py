from django.urls import path

from evaluation import apis, apis_datasets, apis_exports, apis_pairwise, apis_runs
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

urlpatterns = [
    path("calibration", apis.CalibrationApi.as_view(), name="calibration"),
    path("calibration/bar", apis.CalibrationBarApi.as_view(), name="calibration-bar"),
    path("calibration/agent", apis.AgentCalibrationApi.as_view(), name="calibration-agent"),
    path(
        "datasets/<id:dataset_id>/versions/<id:number>/runs",
        apis_runs.DatasetVersionRunsApi.as_view(),
        name="dataset-version-runs",
    ),
    path("datasets/<id:dataset_id>/runs", apis_runs.DatasetRunsApi.as_view(), name="dataset-runs"),
    path(
        "datasets/<id:dataset_id>/runs/<id:run_id>", apis_runs.DatasetRunDetailApi.as_view(), name="dataset-run-detail"
    ),
    path(
        "datasets/<id:dataset_id>/runs/<id:run_id>/compare/<id:other_run_id>",
        apis_runs.DatasetRunCompareApi.as_view(),
        name="dataset-run-compare",
    ),
    path("datasets/<id:dataset_id>/pairwise", apis_pairwise.DatasetPairwiseApi.as_view(), name="dataset-pairwise"),
    path("pairwise", apis_pairwise.PairwiseApi.as_view(), name="pairwise"),
    path("pairwise/<id:queue_id>/result", apis_pairwise.PairwiseResultApi.as_view(), name="pairwise-result"),
    path("datasets", apis_datasets.DatasetsApi.as_view(), name="datasets"),
    path("datasets/<id:dataset_id>", apis_datasets.DatasetDetailApi.as_view(), name="dataset-detail"),
    path("datasets/<id:dataset_id>/promote", apis_datasets.DatasetPromoteApi.as_view(), name="dataset-promote"),
    path("datasets/<id:dataset_id>/items", apis_datasets.DatasetItemsApi.as_view(), name="dataset-items"),
    path(
        "datasets/<id:dataset_id>/items/<id:dataset_item_id>",
        apis_datasets.DatasetItemDetailApi.as_view(),
        name="dataset-item-detail",
    ),
    path("datasets/<id:dataset_id>/versions", apis_datasets.DatasetVersionsApi.as_view(), name="dataset-versions"),
    path(
        "datasets/<id:dataset_id>/versions/<id:number>",
        apis_datasets.DatasetVersionDetailApi.as_view(),
        name="dataset-version-detail",
    ),
    path(
        "datasets/<id:dataset_id>/versions/<id:number>/tags",
        apis_datasets.DatasetVersionTagsApi.as_view(),
        name="dataset-version-tags",
    ),
    path(
        "datasets/<id:dataset_id>/versions/<id:number>/compare/<id:other>",
        apis_datasets.DatasetVersionCompareApi.as_view(),
        name="dataset-version-compare",
    ),
    path("queues/<id:queue_id>/export", apis_exports.QueueExportApi.as_view(), name="queue-export"),
    path(
        "datasets/<id:dataset_id>/versions/<id:number>/export",
        apis_exports.DatasetVersionExportApi.as_view(),
        name="dataset-version-export",
    ),
]
