"""Configuration: one :class:`~streamwatch.config.settings.Settings` object, from ``STREAMWATCH_*`` and one YAML file.

:mod:`~streamwatch.config.settings` (pydantic-settings, secrets as ``SecretStr``),
:mod:`~streamwatch.config.models` (the YAML file's models, channels and models monitored),
:mod:`~streamwatch.config.rules` (alert rules and routing) and
:mod:`~streamwatch.config.durations` (``"5m"``-style durations).

May import: :mod:`streamwatch.contract`, :mod:`streamwatch.errors`. Pure: it reads the
environment and the YAML file it is given, nothing else.
"""
