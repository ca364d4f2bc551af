from django.urls import path

from evaluation import apis

urlpatterns = [
    path("calibration", apis.CalibrationApi.as_view(), name="calibration"),
    path("calibration/bar", apis.CalibrationBarApi.as_view(), name="calibration-bar"),
    path("calibration/agent", apis.AgentCalibrationApi.as_view(), name="calibration-agent"),
]
