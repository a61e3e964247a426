"""Every setting, defined once: name, type, default, environment variable and meaning.

Holds :class:`Settings` and its fields (:mod:`~aiops.settings.fields`), the
parsers of environment text (:mod:`~aiops.settings.parse`), the app's current
settings (:mod:`~aiops.settings.current`) and the generated reference
(:mod:`~aiops.settings.docs`). It sits below every pipeline package and may
import only :mod:`aiops.kinds` and ``telemetry`` (for the app extension key);
Flask only inside the function that reads the app context. Import from here.

Why a dataclass and not pydantic-settings: the values are few and flat, the
parsing rules are ours (``1e3`` is not a count, ``true`` is not a number), and
the standard library keeps the dependency list short. Errors name the variable.
"""

from aiops.settings.current import current_settings, install, reconfigure, settings_of
from aiops.settings.docs import masked_url, reference
from aiops.settings.fields import Settings, env_name, is_setting, remediation_field

__all__ = [
    "Settings",
    "current_settings",
    "env_name",
    "install",
    "is_setting",
    "masked_url",
    "reconfigure",
    "reference",
    "remediation_field",
    "settings_of",
]
