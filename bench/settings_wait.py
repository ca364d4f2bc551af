"""Settings for bench/wait.py's server: the app's own, plus, when BENCH_TRACEMALLOC names a
directory, allocation snapshots on request (bench/memtrace.py). Never used outside the benchmark."""

import os

from reviewapp.settings import *  # noqa: F403

if os.environ.get("BENCH_TRACEMALLOC"):
    from bench import memtrace

    memtrace.install(os.environ["BENCH_TRACEMALLOC"])
