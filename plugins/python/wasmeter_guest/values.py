"""Builders for the contract's records and the host's naming rules."""

import re

from wit_world.imports import host
from wit_world.imports.types import (
    Field,
    FieldValue_Number,
    FieldValue_Text,
    Label,
    MetricKind,
    RecordError,
    Sample,
    StreamEvent,
    TopicUpdate,
)

_SEGMENT = re.compile(r"[A-Za-z0-9_.:-]+\Z")
_METRIC = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*\Z")


def now_ms():
    """Wall-clock Unix milliseconds from the host."""
    return host.now_ms()


def is_valid_topic_segment(s):
    return _SEGMENT.match(s) is not None


def is_valid_topic(t):
    return all(is_valid_topic_segment(s) for s in t.split("/"))


def is_valid_metric_name(name):
    return len(name.encode()) <= 200 and _METRIC.match(name) is not None


def _labels(labels):
    """Label records (e.g. a sample's ``labels``) or ``(name, value)`` pairs."""
    return [Label(lb.name, lb.value) if hasattr(lb, "name") else Label(*lb) for lb in labels]


def gauge(name, value, labels=(), ts=0):
    """A gauge; ``labels``: label records or ``(name, value)`` pairs; ``ts`` 0: now."""
    return Sample(name, _labels(labels), float(value), MetricKind.GAUGE, ts)


def counter(name, value, labels=(), ts=0):
    """A counter; ``labels``: label records or ``(name, value)`` pairs; ``ts`` 0: now."""
    return Sample(name, _labels(labels), float(value), MetricKind.COUNTER, ts)


def label(sample, name, default=None):
    """The value of the label ``name`` of ``sample``, else ``default``."""
    return next((lb.value for lb in sample.labels if lb.name == name), default)


def field(name, value):
    """A number field for ints and floats, a text field for strings."""
    if isinstance(value, str):
        return Field(name, FieldValue_Text(value))
    return Field(name, FieldValue_Number(float(value)))


def update(topic, fields):
    """A topic update from ``(name, value)`` pairs, in order."""
    return TopicUpdate(topic, [field(n, v) for n, v in fields])


def event(topic, fields):
    """A stream event from ``(name, value)`` pairs, in order."""
    return StreamEvent(topic, [field(n, v) for n, v in fields])


def record_error(line, offset, message):
    return RecordError(line, offset, message)
