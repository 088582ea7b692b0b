"""Grafana dashboards as code: every panel's ClickHouse SQL and the dashboard JSON built from it.

May import: :mod:`streamwatch.core`, :mod:`streamwatch.errors`, and ``grafana_foundation_sdk`` (Grafana's typed
dashboard builders, which do no I/O). Pure: building a dashboard does no I/O; the command line writes the files
and :mod:`streamwatch.adapters.grafana` pushes them.
"""
