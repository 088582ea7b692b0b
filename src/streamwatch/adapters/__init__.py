"""Adapters: the one module that owns each I/O library.

:mod:`~streamwatch.adapters.kafka` (confluent-kafka),
:mod:`~streamwatch.adapters.clickhouse` (clickhouse-connect and chdb),
:mod:`~streamwatch.adapters.http` (httpx), :mod:`~streamwatch.adapters.grafana`
(grafana-client), :mod:`~streamwatch.adapters.localbroker` (the embedded
Kafka-protocol broker), :mod:`~streamwatch.adapters.prometheus`
(prometheus-client) and :mod:`~streamwatch.adapters.datasets` (pyarrow, for
training data). Nothing outside this package imports those libraries.

May import: :mod:`streamwatch.pipeline`, :mod:`streamwatch.alerts`, :mod:`streamwatch.dashboards`,
:mod:`streamwatch.report`, and everything below them.
"""
