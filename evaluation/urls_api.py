from django.urls import path

from evaluation import apis, apis_exports
from reviewapp import converters  # noqa: F401 - registers the <id:> path converter

urlpatterns = [
    path("calibration", apis.CalibrationApi.as_view(), name="calibration"),
    path("calibration/bar", apis.CalibrationBarApi.as_view(), name="calibration-bar"),
    path("calibration/agent", apis.AgentCalibrationApi.as_view(), name="calibration-agent"),
    path("queues/<id:queue_id>/export", apis_exports.QueueExportApi.as_view(), name="queue-export"),
    path(
        "datasets/<id:dataset_id>/versions/<id:number>/export",
        apis_exports.DatasetVersionExportApi.as_view(),
        name="dataset-version-export",
    ),
]
