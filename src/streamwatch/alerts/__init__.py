"""Alerting: rules over findings and metric rows, the alert lifecycle, routing, silences and actions.

:mod:`~streamwatch.alerts.rules` and :mod:`~streamwatch.alerts.observations` judge
rows against rules; :mod:`~streamwatch.alerts.routing` groups, throttles and
silences like Alertmanager; :mod:`~streamwatch.alerts.engine` ties them together;
:mod:`~streamwatch.alerts.actions` turns firing alerts into retrain and
circuit-break events; :mod:`~streamwatch.alerts.notification` is what a channel
is sent; :mod:`~streamwatch.alerts.defaults` are the built-in rules.

May import: :mod:`streamwatch.core`, :mod:`streamwatch.profiles`, :mod:`streamwatch.config`,
:mod:`streamwatch.contract`, :mod:`streamwatch.errors`. Pure: the clock is passed in.
"""
