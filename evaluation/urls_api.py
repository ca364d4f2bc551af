from django.urls import path

from evaluation import apis, apis_pairwise, apis_runs
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
]
