"""``python -m aiops.settings > docs/configuration.md``."""

from aiops.settings.docs import reference

print(reference(), end="")
