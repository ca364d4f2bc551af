from django.apps import AppConfig


class EscalationsConfig(AppConfig):
    name = "escalations"
    verbose_name = "Escalations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The core announces new conversations through reviewapp.hooks; actions that named one
        # before it arrived are linked there.
        from escalations import receivers  # noqa: F401
