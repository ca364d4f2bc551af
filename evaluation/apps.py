from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = "Evaluation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Labeling, escalations and the core announce final labels, decisions and late judge
        # scores through reviewapp.hooks; calibration pairs follow them from there.
        from evaluation import receivers, selectors  # noqa: F401
        from labeling import services as labeling_services

        # Labeling's budget controller may not import evaluation: it reads the judges'
        # calibration through this provider (the daily snapshots).
        labeling_services.calibration_provider_register(selectors.calibration_readings)
