from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = "Evaluation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Labeling, escalations and the core announce final labels, decisions and late judge
        # scores through reviewapp.hooks; calibration pairs follow them from there.
        from evaluation import receivers  # noqa: F401
