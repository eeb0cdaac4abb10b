"""Hypothesis profiles, picked by HYPOTHESIS_PROFILE: `dev` (quick, the default) or `ci` (deeper).

Property tests scale their own budgets from the loaded profile's `max_examples`, so one
environment variable decides how hard every suite looks.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=10,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    database=None,
    derandomize=True,  # CI repeats itself: a red run is a real, reproducible finding
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
