"""A downstream training job's starting point: consume streamwatch's retrain events and act on each once.

streamwatch publishes a ``retrain`` event (``schemas/retrain.schema.json``) to
``streamwatch.retrain`` when a rule with the ``retrain`` action fires. This
consumer reads them in its own consumer group, validates each against the
contract, skips (and reports) anything malformed, ignores an event it has
already handled (delivery is at least once), and commits only after handling,
so a crash handles the event again rather than losing it.

Replace :func:`start_training` with what your platform does: submit a training
pipeline run, open a ticket, post to a queue. Here it prints one JSON line with
what a training job needs.

    python examples/retrain_consumer.py --bootstrap 127.0.0.1:9092 --topic streamwatch.retrain \
        --group my-training-job [--max-events N] [--timeout S]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import confluent_kafka

from streamwatch import ContractError, RetrainEvent, parse_event


def start_training(event: RetrainEvent) -> None:
    """What a training job needs from the request; replace with a call to your training platform."""
    print(
        json.dumps(
            {
                "event_id": event.event_id,
                "model": event.model,
                "model_version": event.model_version,
                "severity": event.severity,
                "reason": event.reason,
                "train_from": event.suggested_data_start.isoformat() if event.suggested_data_start else None,
                "train_to": event.suggested_data_end.isoformat() if event.suggested_data_end else None,
                "reference_data": event.lineage.get("data_uri"),
                "reference_sha256": event.lineage.get("content_sha256"),
                "drifted_features": event.evidence.get("features", {}),
                "degraded_metrics": event.evidence.get("metrics", {}),
            },
            sort_keys=True,
        ),
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="streamwatch.retrain")
    parser.add_argument("--group", default="retrain-consumer")
    parser.add_argument("--max-events", type=int, default=0, help="stop after this many handled (0: run forever)")
    parser.add_argument("--timeout", type=float, default=0, help="stop after this many seconds (0: never)")
    args = parser.parse_args()
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([args.topic])
    handled: set[str] = set()
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while not (args.max_events and len(handled) >= args.max_events):
            if deadline is not None and time.monotonic() > deadline:
                print(f"stopped after {args.timeout} s with {len(handled)} events handled", file=sys.stderr)
                return 1 if args.max_events else 0  # short of --max-events is a failure
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:  # the client retries by itself; say why nothing arrives
                print(f"consumer: {message.error()}", file=sys.stderr)
                continue
            try:
                # A tombstone (no value) is malformed too: it must not stop the job.
                event = parse_event(message.value() or b"", any_type=True)
                if not isinstance(event, RetrainEvent):
                    raise ContractError("type", f"expected a retrain event, got {event.type!r}")
            except ContractError as exc:
                print(f"skipped offset {message.offset()}: {exc}", file=sys.stderr)
            else:
                if event.event_id not in handled:  # at least once: the same request may come twice
                    start_training(event)
                    handled.add(event.event_id)
            consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
