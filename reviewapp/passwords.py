"""Ends a person's API tokens when their password really changes.

Django reports a real change to every configured password validator (`password_changed`, called
by `AbstractBaseUser.save` after `set_password`): the password change and reset forms, the
admin's password form, `changepassword`, `createsuperuser` and any script's `set_password` then
`save`. It does not report the hash upgrade it makes at sign-in when the hasher list or its
iterations change: that `check_password` setter clears the raw password before saving, because
"password hash upgrades shouldn't be considered password changes". So this hook, listed in
AUTH_PASSWORD_VALIDATORS, sees exactly the changes that should end tokens, and a system check
(reviewapp.E002) refuses to start without it.

Not covered, by design: writing a hash directly (`user.password = make_password(...)`, a
queryset `update`), which skips Django's own notification; use `set_password`. A password made
unusable (the admin's "disable password-based authentication") needs no hook: a token of a user
without a usable password never works (`selectors.principal_from_token`).
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
