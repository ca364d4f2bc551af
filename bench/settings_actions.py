"""Settings for bench/actions.py: the app's own settings, plus one bare JSON view on the same
server (bench/urls_actions.py) to measure the ceiling next to the action requests. Never used
outside the benchmark."""

from reviewapp.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_actions"
