"""Shared test configuration.

Hypothesis runs deterministically (the same examples on every run and every
machine) and briefly, so property tests never make CI flaky or slow; a test
that wants more examples says so with @settings(max_examples=...). Set
HYPOTHESIS_PROFILE=thorough to search harder locally.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# One emulator, workspace and runner for every suite (tests/support/fixtures.py).
pytest_plugins = ["support.fixtures"]

settings.register_profile(
    "default",
    derandomize=True,
    max_examples=100,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    derandomize=False,
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# The emulator stores a run before it answers, so a lost submission never
# lands late there; waiting out the real-world grace period (60 s) would only
# slow the crash tests down. tests/unit/test_recovery_grace.py covers the wait.
os.environ.setdefault("DFR_RECOVERY_GRACE", "0")

# The validation cache (reconciler.vcache) is on for every CLI test, as for
# users, but in a folder of this test session, never in the user's ~/.cache.
if "DFR_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="dfr-test-cache-")
    os.environ["DFR_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)
