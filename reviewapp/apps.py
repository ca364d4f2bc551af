from django.apps import AppConfig


class ReviewappConfig(AppConfig):
    name = "reviewapp"
    verbose_name = "reviewapp core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Ends API tokens when a password is turned off; importing it registers the system
        # check that the password-change hook is configured.
        from reviewapp import passwords

        passwords.connect()
