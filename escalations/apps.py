from django.apps import AppConfig


class EscalationsConfig(AppConfig):
    name = "escalations"
    verbose_name = "Escalations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # receivers: the core announces new conversations through reviewapp.hooks, and actions
        # that named one before it arrived are linked there. tasks_webhooks: Celery's
        # autodiscovery imports only `tasks` modules; the webhook tasks live apart and must be
        # registered in every process (workers, beat's in-process stand-in).
        from escalations import receivers, tasks_webhooks  # noqa: F401

        # reviewapp/asgi.py serves waits (GET /api/v1/actions/{id}?wait=N) with no thread held;
        # the core never imports this app, so it learns which requests those are from the hook.
        from escalations.apis import waiting
        from reviewapp import hooks

        hooks.on_long_poll(waiting.is_wait_request, waiting.serve)
