"""Glue between a plugin class and the classes componentize-py exports.

componentize-py calls methods of the app module's ``Plugin`` and ``Collect`` /
``Derive`` classes; the one plugin instance created by ``init`` lives here, at
module level, for the life of the component instance.
"""

from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import PluginInfo, PluginKind

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


def export_metric(cls):
    """``Plugin, Derive = export_metric(MyMetric)`` in the app module."""

    class Derive:
        def on_samples(self, samples):
            plugin = _require()
            return _guard(lambda: list(plugin.on_samples(samples)))

        def on_tick(self, now_ms):
            plugin = _require()
            tick = getattr(plugin, "on_tick", None)
            return [] if tick is None else _guard(lambda: list(tick(now_ms)))

    return _lifecycle(cls, PluginKind.METRIC), Derive


def export_delta(cls):
    """``Plugin, Diff = export_delta(MyDelta)`` in the app module. The class has
    ``diff(topic, previous, current) -> (changed, removed)`` and
    ``apply(previous, changed, removed) -> fields``; a ``ValueError`` from ``diff``
    costs only its topic (subscribers then get the exact difference)."""
    from componentize_py_types import Ok
    from wit_world.exports.diff import Delta

    class Diff:
        def diff(self, changes):
            plugin = _require()
            results = []
            for change in changes:
                try:
                    changed, removed = plugin.diff(change.topic, change.previous, change.current)
                    results.append(Ok(Delta(list(changed), list(removed))))
                except ValueError as e:
                    results.append(Err(str(e)))
            return results

        def apply(self, previous, delta):
            plugin = _require()
            return _guard(lambda: list(plugin.apply(previous, delta.changed, delta.removed)))

    return _lifecycle(cls, PluginKind.DELTA), Diff
