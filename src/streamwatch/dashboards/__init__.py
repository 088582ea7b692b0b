"""Grafana dashboards as code: every panel's ClickHouse SQL and the dashboard JSON built from it.

May import: :mod:`streamwatch.core`, :mod:`streamwatch.errors`. Pure: building a dashboard does no I/O;
:mod:`streamwatch.adapters.grafana` pushes it.
"""
