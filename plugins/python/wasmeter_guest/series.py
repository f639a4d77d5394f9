"""Series identity and metric selection (``wasmeter_sdk::series``)."""

from wit_world.imports.types import MetricKind

from .values import is_valid_metric_name


def key(name, labels):
    """``name{a="1",b="2"}`` with labels sorted: the identity of a series.

    ``labels``: label records or ``(name, value)`` pairs.
    """
    pairs = [(lb.name, lb.value) if hasattr(lb, "name") else tuple(lb) for lb in labels]
    parts = []
    for n, v in sorted(pairs):
        v = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{n}="{v}"')
    return name + "{" + ",".join(parts) + "}"


class Selection:
    """Which samples a metric plugin handles: the config list `key`, else every
    sample of `default_kind` not ending in one of `skip_suffixes`."""

    def __init__(self, config, key, default_kind=MetricKind.GAUGE, skip_suffixes=()):
        raw = config.get(key)
        names = None if raw is None else [n.strip() for n in raw.split(",") if n.strip()]
        for n in names or []:
            if not is_valid_metric_name(n):
                raise ValueError(f"config `{key}`: `{n}` is not a valid metric name")
        self.names = set(names) if names else None
        self.default_kind = default_kind
        self.skip = tuple(skip_suffixes)

    def reads(self, name, kind):
        """Whether samples named `name` of `kind` are selected, whatever their value."""
        if self.names is not None:
            return name in self.names
        return kind == self.default_kind and not name.endswith(self.skip or ("\0",))

    def matches(self, sample):
        v = sample.value
        if v != v or v in (float("inf"), float("-inf")):
            return False
        return self.reads(sample.name, sample.kind)
