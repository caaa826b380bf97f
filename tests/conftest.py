"""Suite-wide settings."""
from hypothesis import HealthCheck, settings

# The CI machine is shared and noisy: hypothesis' timing checks would fail tests for the machine's
# load, not for bolt. Every property test still runs its full number of examples.
settings.register_profile("bolt", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("bolt")
