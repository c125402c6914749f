"""The one form every timestamp is shown in: ISO 8601, UTC, microseconds, ``Z``.

``2026-11-25T13:05:27.123456Z`` in objects printed by the client,
notification payloads, capability reports and ``service list``: the same
width everywhere, so timestamps sort as text and read the same in every
tool. Naive datetimes are UTC (the database stores UTC).
"""

import datetime

FORMAT = '%Y-%m-%dT%H:%M:%S.%fZ'


def iso(value):
    """``value`` (a datetime, an ISO/oslo timestamp string, or None) in the one form."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed = parse(value)
        return iso(parsed) if parsed is not None else value
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.strftime(FORMAT)


def parse(text):
    """A datetime from ``2026-11-25T13:05:27Z``, ``...+00:00`` or oslo's ``2026-11-25 13:05:27.123456``; None if it is none of them."""
    try:
        value = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        return None
    return value


def utcnow():
    return iso(datetime.datetime.now(datetime.timezone.utc))
