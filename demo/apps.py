from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo tenants and their traffic (`manage.py seed_demo`). The one app that may import every
    other app; nothing imports it."""

    name = "demo"
    verbose_name = "Demo data"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # `serve` prints the demo logins through reviewapp.hooks: the core never imports demo.
        from demo import banner
        from reviewapp import hooks

        hooks.on_serve_banner(banner.demo_logins)
