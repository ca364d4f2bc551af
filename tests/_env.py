"""Loaded with `-p tests._env` before Django starts: test defaults for the environment.

Settings refuse to start without SECRET_KEY when DEBUG is off (as production must); tests run
with DEBUG off, so they bring their own throwaway key.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
# Playwright's sync API runs an event loop in the test thread; Django would otherwise refuse
# ORM calls made there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
