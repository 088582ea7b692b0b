"""Notifications: each channel's payload (Slack, PagerDuty, signed webhooks, Alertmanager) and the dispatcher.

:mod:`~streamwatch.notify.payloads` is pure: a notification in, a channel's
request body out. :mod:`~streamwatch.notify.channels` picks the requests for a
channel, and :mod:`~streamwatch.notify.dispatcher` consumes the outbox topic and
delivers with retries, through the transports it is given.

May import: :mod:`streamwatch.adapters`, :mod:`streamwatch.alerts`, :mod:`streamwatch.config`,
:mod:`streamwatch.contract`, :mod:`streamwatch.errors`.
"""
