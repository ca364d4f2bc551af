from django.urls import path

from provisioning import apis

urlpatterns = [
    path("projects/<slug:project_slug>/config", apis.ProjectConfigApi.as_view(), name="project-config"),
]
