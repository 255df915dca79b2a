"""Test-suite settings."""
from hypothesis import settings

# Shape fuzzing draws the same examples on every run (seeded by each test), so
# a failure in CI reproduces anywhere; `pytest --hypothesis-profile=explore`
# draws new ones.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")
