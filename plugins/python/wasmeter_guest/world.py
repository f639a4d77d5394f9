"""Glue between a plugin class and the classes componentize-py exports.

componentize-py calls methods of the app module's ``Plugin`` and ``Collect`` /
``Derive`` classes; the one plugin instance created by ``init`` lives here, at
module level, for the life of the component instance.
"""

from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import (
    Field,
    PluginInfo,
    PluginKind,
    Point,
    Sample,
    SampleBatch,
    Series,
)

_instance = None


def _config():
    return dict(host.config())


def _lifecycle(cls, kind):
    class Plugin:
        def describe(self):
            info = cls.info(_config()) if hasattr(cls, "info") else {}
            return PluginInfo(
                name=cls.NAME,
                version=cls.VERSION,
                kind=kind,
                description=cls.DESCRIPTION,
                emits=list(info.get("emits", [])),
                stateful=bool(info.get("stateful", hasattr(cls, "export_state"))),
            )

        def init(self, config):
            global _instance
            try:
                _instance = cls(dict(config))
            except ValueError as e:
                raise Err(str(e)) from None

        def export_state(self):
            export = getattr(_instance, "export_state", None)
            return None if export is None else export()

        def import_state(self, state):
            # Like the Rust SDK: a plugin without import_state ignores the state.
            restore = getattr(_require(), "import_state", None)
            if restore is None:
                return
            try:
                restore(bytes(state))
            except ValueError as e:
                raise Err(str(e)) from None

    return Plugin


def _require():
    if _instance is None:
        raise Err("called before init")
    return _instance


def _guard(call):
    try:
        return call()
    except ValueError as e:
        raise Err(str(e)) from None


def export_collector(cls):
    """``Plugin, Collect = export_collector(MyCollector)`` in the app module."""
    from wit_world.exports.collect import CollectOutput

    class Collect:
        def collect(self, source, chunk):
            out = CollectOutput(
                samples=[], series_reset=False, series=[], points=[],
                updates=[], events=[], errors=[],
            )
            plugin = _require()
            _guard(lambda: plugin.collect(source, bytes(chunk), out))
            return out

    return _lifecycle(cls, PluginKind.COLLECTOR), Collect


# The most series either side holds numbered (contract 0.4.0).
_MAX_SERIES = 65536
# The series the host declared to this instance, by number: [series, read?].
_given = []
# The series this instance declared to the host: key -> number.
_derived = {}


def _take_given(batch):
    """Takes the host's declarations of ``batch`` (whatever follows: the host
    counts them as made) and returns its points."""
    if batch.series_reset:
        _given.clear()
    _given.extend([s, None] for s in batch.series)
    return batch.points


def _samples_read(points, reads):
    """The points' samples, whole, of the series ``reads(name, kind)`` (asked
    once per series; ``None``: every series)."""
    samples = []
    for i, p in enumerate(points):
        if p.series >= len(_given):
            raise ValueError(
                f"input point #{i}: no series #{p.series} (the host declared {len(_given)})"
            )
        given = _given[p.series]
        s, read = given
        if read is None:
            read = given[1] = reads is None or bool(reads(s.name, s.kind))
        if read:
            samples.append(Sample(s.name, s.labels, p.value, s.kind, p.timestamp_ms))
    return samples


def _batch_out(samples):
    """The plugin's samples as points of series declared once (only for a call
    that succeeds: a failed call declares nothing)."""
    global _derived
    samples = list(samples)
    keys = [(s.kind, s.name, tuple((lb.name, lb.value) for lb in s.labels)) for s in samples]
    if len(set(keys)) > _MAX_SERIES:
        raise ValueError(
            f"more than {_MAX_SERIES} series in one call: the host takes at most that many at once"
        )
    fresh = len({k for k in keys if k not in _derived})
    reset = len(_derived) + fresh > _MAX_SERIES
    if reset:
        _derived = {}
    series, points = [], []
    for s, key in zip(samples, keys):
        number = _derived.get(key)
        if number is None:
            number = len(_derived)
            _derived[key] = number
            series.append(Series(s.name, s.labels, s.kind))
        points.append(Point(number, s.value, s.timestamp_ms))
    return SampleBatch(reset, series, points)


def export_metric(cls):
    """``Plugin, Derive = export_metric(MyMetric)`` in the app module. The class
    takes and gives whole samples; the glue turns the host's points into samples
    and the plugin's samples into points (contract 0.4.0). An optional
    ``reads(name, kind) -> bool`` limits the samples it is given to the series it
    reads (asked once per series)."""

    class Derive:
        def on_samples(self, batch):
            points = _take_given(batch)
            plugin = _require()
            reads = getattr(plugin, "reads", None)
            return _guard(lambda: _batch_out(plugin.on_samples(_samples_read(points, reads))))

        def on_tick(self, now_ms):
            plugin = _require()
            tick = getattr(plugin, "on_tick", None)
            return _guard(lambda: _batch_out([] if tick is None else tick(now_ms)))

    return _lifecycle(cls, PluginKind.METRIC), Derive


def export_delta(cls):
    """``Plugin, Diff = export_delta(MyDelta)`` in the app module. The class has
    ``diff(topic, previous, current) -> (changed, removed)`` and
    ``apply(previous, changed, removed) -> fields``; a ``ValueError`` from ``diff``
    costs only its topic (subscribers then get the exact difference)."""
    from componentize_py_types import Ok
    from wit_world.exports.diff import Delta

    def named(names, fields):
        # Contract 0.4.0 names each field once per call; fields give its index.
        out = []
        for f in fields:
            if f.name >= len(names):
                raise ValueError(f"field name #{f.name} of {len(names)} given in the call")
            out.append(Field(names[f.name], f.value))
        return out

    class Diff:
        def diff(self, names, changes):
            plugin = _require()
            results = []
            for change in changes:
                try:
                    previous = named(names, change.previous)
                    current = named(names, change.current)
                    changed, removed = plugin.diff(change.topic, previous, current)
                    results.append(Ok(Delta(list(changed), list(removed))))
                except ValueError as e:
                    results.append(Err(str(e)))
            return results

        def apply(self, previous, delta):
            plugin = _require()
            return _guard(lambda: list(plugin.apply(previous, delta.changed, delta.removed)))

    return _lifecycle(cls, PluginKind.DELTA), Diff
