from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Labeling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The core announces new conversations through reviewapp.hooks; sampling listens there.
        from labeling import receivers  # noqa: F401
