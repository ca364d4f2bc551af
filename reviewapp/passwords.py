"""Ends a person's API tokens when their password really changes.

Django reports a real change to every configured password validator (`password_changed`, called
by `AbstractBaseUser.save` after `set_password`): the password change and reset forms, the
admin's password form, `changepassword`, `createsuperuser` and any script's `set_password` then
`save`. It does not report the hash upgrade it makes at sign-in when the hasher list or its
iterations change: that `check_password` setter clears the raw password before saving, because
"password hash upgrades shouldn't be considered password changes". So this hook, listed in
AUTH_PASSWORD_VALIDATORS, sees exactly the changes that should end tokens, and a system check
(reviewapp.E002) refuses to start without it.

Django reports no change when a password is made unusable (the admin's "disable
password-based authentication", `set_unusable_password` then `save`), so a `pre_save` receiver
on the user model covers that one transition: a save that turns a stored usable password into
an unusable one moves the epoch too. (A token itself may belong to someone without a usable
password: an account provisioned by a script signs in no other way.)

Not covered, by design: writing a hash directly (`user.password = make_password(...)`, a
queryset `update`), which skips Django's own notification; use `set_password`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

HOOK_PATH = "reviewapp.passwords.CredentialsEpochHook"


class CredentialsEpochHook:
    """A password validator that validates nothing: it is listed for its `password_changed`."""

    def validate(self, password: str, user: Any = None) -> None:
        return None

    def password_changed(self, password: str, user: Any = None) -> None:
        if user is None or user.pk is None:
            return
        from reviewapp import services  # services import models; validators load at start-up

        services.user_credentials_epoch_bump(user=user)

    def get_help_text(self) -> str:
        # Shown in the list under every password form, where it is worth knowing.
        return "Changing your password ends your API tokens."


def password_disabled(sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any) -> None:
    """pre_save on the user model: a usable password about to be replaced by an unusable one."""
    from django.contrib.auth.hashers import is_password_usable

    if raw or instance.pk is None or is_password_usable(instance.password):
        return
    if update_fields is not None and "password" not in update_fields:
        return
    # Read only for users whose password is unusable, and only on saves that write it.
    stored = type(instance)._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is not None and is_password_usable(stored):
        from reviewapp import services

        services.user_credentials_epoch_bump(user=instance)


def connect() -> None:
    from django.contrib.auth import get_user_model
    from django.db.models.signals import pre_save

    pre_save.connect(password_disabled, sender=get_user_model(), dispatch_uid="reviewapp.passwords.password_disabled")


@checks.register(checks.Tags.security)
def check_credentials_epoch_hook(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    names = [validator.get("NAME") for validator in settings.AUTH_PASSWORD_VALIDATORS]
    if HOOK_PATH in names:
        return []
    return [
        checks.Error(
            f"{HOOK_PATH} is missing from AUTH_PASSWORD_VALIDATORS.",
            hint="Without it a password change no longer ends the person's API tokens.",
            id="reviewapp.E002",
        )
    ]
