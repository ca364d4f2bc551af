from django.urls import path

from provisioning import views

app_name = "provisioning"

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("new", views.project_new, name="project-new"),
]
