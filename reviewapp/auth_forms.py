"""Sign-in forms for `/login/` and `/admin/login/`, throttled like the token endpoint."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import HttpResponse

from reviewapp import login_throttle


class ThrottledAuthenticationMixin:
    """Replaces AuthenticationForm.clean's `authenticate` with the throttled one."""

    throttled: login_throttle.Throttled | None = None

    def clean(self) -> dict[str, Any]:
        form: Any = self
        username = form.cleaned_data.get("username")
        password = form.cleaned_data.get("password")
        if username is not None and password:
            try:
                form.user_cache = login_throttle.authenticate_throttled(
                    form.request, username=username, password=password
                )
            except login_throttle.Throttled as exc:
                self.throttled = exc
                raise ValidationError(exc.message, code="throttled") from exc
            if form.user_cache is None:
                raise form.get_invalid_login_error()
            form.confirm_login_allowed(form.user_cache)
        return form.cleaned_data


class ThrottledAuthenticationForm(ThrottledAuthenticationMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledAuthenticationMixin, AdminAuthenticationForm):
    pass


class ThrottledLoginView(LoginView):
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if form.throttled is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.throttled.retry_after)
        return response
