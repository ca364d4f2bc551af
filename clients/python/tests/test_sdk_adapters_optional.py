"""The adapters are extras: without their framework the package still imports, and importing
an adapter says which extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# Runs in a fresh interpreter where neither framework can be imported, as if not installed.
PROGRAM = f"""
import importlib.abc, sys
sys.path.insert(0, {str(SRC)!r})

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("agents", "langgraph"):
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return None

sys.meta_path.insert(0, NotInstalled())
import reviewapp_client
import reviewapp_client._adapters
assert reviewapp_client.Client is not None
for adapter, extra in (("openai_agents", "openai-agents"), ("langgraph", "langgraph")):
    try:
        __import__("reviewapp_client." + adapter)
    except ImportError as exc:
        assert f"reviewapp-client[{{extra}}]" in str(exc), exc
    else:
        raise AssertionError(adapter + " imported without its framework")
print("ok")
"""


def test_the_core_imports_without_either_framework():
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_core_does_not_import_the_adapters():
    program = (
        f"import sys; sys.path.insert(0, {str(SRC)!r}); import reviewapp_client; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('agents', 'langgraph', 'langchain_core')))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
