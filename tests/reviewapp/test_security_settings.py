"""Production settings from the environment (deploy check, SECRET_KEY strength, proxy count,
shared cache) and the headers every response carries (CSP, Cache-Control)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from reviewapp.tokens import token_generate

# Builds its own environment (a fresh `make run` on SQLite, or settings in a subprocess without
# DATABASE_URL/REDIS_URL): the same on either CI pass, so .ci/run's SQLite pass leaves it out.
pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parent.parent.parent
STRONG_KEY = token_generate("") + token_generate("")  # 86 random url-safe characters

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "review.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://review.example.com",
    "BEHIND_PROXY": "1",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
}
_DROPPED = {
    "DATABASE_URL",
    "REDIS_URL",
    "CACHE_URL",
    "SECRET_KEY",
    "DEBUG",
    "NUM_PROXIES",
    "PYTEST_XDIST_WORKER",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # tests/_env.py sets it for Playwright; production never does
}


def _run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in _DROPPED and not k.startswith(("SECURE_", "SESSION_"))}
    base.pop("CSRF_COOKIE_SECURE", None)
    base.update(REVIEWAPP_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120, check=False
    )


def _settings(env: dict[str, str], tmp_path: Path, *names: str) -> dict[str, object]:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    result = _run(["-c", code], {"DJANGO_SETTINGS_MODULE": "reviewapp.settings", **env}, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_deploy_check_passes_with_the_documented_production_environment(tmp_path):
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_deploy_check_names_what_is_missing_without_hsts_and_redirect(tmp_path):
    env = {k: v for k, v in PRODUCTION_ENV.items() if not k.startswith("SECURE_")}

    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)

    assert result.returncode != 0
    assert "security.W004" in result.stderr
    assert "security.W008" in result.stderr


@pytest.mark.parametrize(
    "key",
    [
        "short-but-secret",
        "a" * 60,  # long, but five distinct characters are the minimum
        "django-insecure-" + "x1y2z3" * 10,
    ],
)
def test_a_weak_secret_key_is_refused_with_debug_off(tmp_path, key):
    result = _run(["manage.py", "check"], {**PRODUCTION_ENV, "SECRET_KEY": key}, tmp_path)

    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


def test_a_short_secret_key_is_fine_for_local_work(tmp_path):
    result = _run(["manage.py", "check"], {"DEBUG": "1", "SECRET_KEY": "short"}, tmp_path)

    assert result.returncode == 0, result.stderr


def test_x_forwarded_for_is_trusted_only_behind_a_proxy(tmp_path):
    direct = _settings({"DEBUG": "1"}, tmp_path, "NUM_PROXIES", "REST_FRAMEWORK", "SECURE_PROXY_SSL_HEADER")
    proxied = _settings({"DEBUG": "1", "BEHIND_PROXY": "1"}, tmp_path, "NUM_PROXIES", "REST_FRAMEWORK")
    two = _settings({"DEBUG": "1", "BEHIND_PROXY": "1", "NUM_PROXIES": "2"}, tmp_path, "NUM_PROXIES")

    assert (direct["NUM_PROXIES"], direct["REST_FRAMEWORK"]["NUM_PROXIES"]) == (0, 0)
    assert direct["SECURE_PROXY_SSL_HEADER"] is None
    assert (proxied["NUM_PROXIES"], proxied["REST_FRAMEWORK"]["NUM_PROXIES"]) == (1, 1)
    assert two["NUM_PROXIES"] == 2


def test_the_cache_is_redis_on_its_own_database_when_redis_is_configured(tmp_path):
    local = _settings({"DEBUG": "1"}, tmp_path, "CACHES")
    shared = _settings({"DEBUG": "1", "REDIS_URL": "redis://redis:6379/0"}, tmp_path, "CACHES", "CELERY_BROKER_URL")
    chosen = _settings(
        {"DEBUG": "1", "REDIS_URL": "redis://redis:6379/0", "CACHE_URL": "redis://cache:6379/5"}, tmp_path, "CACHES"
    )
    worker = _settings({"DEBUG": "1", "PYTEST_XDIST_WORKER": "gw3"}, tmp_path, "CACHES")

    assert local["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert shared["CACHES"]["default"] == {
        "BACKEND": "reviewapp.cache.PrefixedRedisCache",
        "LOCATION": "redis://redis:6379/1",
        "KEY_PREFIX": "reviewapp",
    }
    assert shared["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert chosen["CACHES"]["default"]["LOCATION"] == "redis://cache:6379/5"
    assert worker["CACHES"]["default"]["KEY_PREFIX"] == "reviewapp-gw3"


# --- headers ----------------------------------------------------------------------------------


def test_every_page_carries_the_content_security_policy(db):
    response = Client().get("/login/")

    assert response["Content-Security-Policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )


def test_only_redoc_allows_inline_styles(db):
    redoc = Client().get("/api/redoc/")["Content-Security-Policy"]
    swagger = Client().get("/api/docs/")["Content-Security-Policy"]

    assert "style-src 'self' 'unsafe-inline'" in redoc
    assert "script-src 'self';" in redoc
    assert "unsafe-inline" not in swagger


def test_signed_in_pages_are_private_and_not_stored(member, org):
    client = Client()
    client.force_login(member("engineer"))

    response = client.get("/")

    assert response.status_code == 200
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"private", "no-store", "no-cache"} <= directives


def test_api_responses_to_a_credential_are_private(api_client_for):
    response = api_client_for("engineer").get("/api/v1/me")

    assert response.status_code == 200
    assert "private" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]


def test_the_token_endpoint_s_answer_is_never_stored(member, org):
    from tests.factories import DEFAULT_PASSWORD

    member("engineer", username="alice")

    response = Client().post(
        "/api/v1/auth/token", {"username": "alice", "password": DEFAULT_PASSWORD}, content_type="application/json"
    )

    assert response.status_code == 201
    assert {"private", "no-store"} <= {part.strip() for part in response["Cache-Control"].split(",")}


def test_anonymous_pages_are_not_marked_private(db):
    response = Client().get("/api/redoc/")

    assert response.status_code == 200
    assert "Cache-Control" not in response


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (set REDIS_URL)")
def test_clearing_the_redis_cache_deletes_only_its_own_prefix():
    from django.core.cache import cache

    client = cache._cache.get_client(write=True)
    foreign = f"someone-else:{STRONG_KEY[:8]}"
    client.set(foreign, "kept", ex=60)
    cache.set("mine", "gone")
    try:
        cache.clear()

        assert cache.get("mine") is None
        assert client.get(foreign) == b"kept"
    finally:
        client.delete(foreign)
