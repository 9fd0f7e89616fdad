"""memberlake: member, order and clickstream data to a customer 360 on Spark + Delta Lake.

The public surface is small: settings, the session factory and the lakehouse. Transforms live in
the area packages (``memberlake.ingest``, ``memberlake.clean``, ...); jobs in ``memberlake.jobs``.
"""
from memberlake.settings import Settings, SettingsError, load_settings

__version__ = "0.1.0"
__all__ = ["Settings", "SettingsError", "load_settings", "__version__"]
