"""The worker's image engine: ImageMagick, found once, run once per job under our policy.

``detect_engine()`` finds the real binary; ``convert()`` sniffs and size-checks the input,
then converts and tags it in one ImageMagick process (no shell) under the allowlist policy in
``config/policy.xml``; ``check_policy()`` proves that policy is the one in force.
"""

from server.engine.conversion import Converted, convert
from server.engine.detect import Engine, detect_engine
from server.engine.errors import ConversionError, EngineMissing
from server.engine.limits import DEFAULT_LIMITS, Limits
from server.engine.policy import check_policy

__all__ = [
    "DEFAULT_LIMITS",
    "ConversionError",
    "Converted",
    "Engine",
    "EngineMissing",
    "Limits",
    "check_policy",
    "convert",
    "detect_engine",
]
