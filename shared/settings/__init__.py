"""The product's settings: one environment-reading base and the carbon library's own settings.

``env`` is the base every component's settings class builds on (``from_env``, the one error
format, ``describe()``); ``values`` are the kinds of value a variable holds; ``carbon`` is the
``STELLAR_CARBON_*`` settings both services read; ``reference`` renders the table of every
variable in ``docs/settings.md``.
"""

from shared.settings.carbon import (
    KNOWN_PROVIDERS,
    CarbonAwareLocation,
    CarbonSettings,
    EmissionFactorType,
)
from shared.settings.env import EnvSettings
from shared.settings.inventory import InventorySource

__all__ = [
    "KNOWN_PROVIDERS",
    "CarbonAwareLocation",
    "CarbonSettings",
    "EmissionFactorType",
    "EnvSettings",
    "InventorySource",
]
