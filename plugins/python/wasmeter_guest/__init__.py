"""wasmeter guest SDK for Python plugins (built with componentize-py).

A plugin is a class with ``NAME``, ``VERSION``, ``DESCRIPTION``, ``__init__(config)``
(raise ``ValueError`` to refuse the config, naming the key) and the call of its world
(``collect``, ``diff`` / ``apply``, or ``on_samples`` / ``on_tick``); optionally a
static ``info(config)`` (``{"emits": [...], "stateful": bool}``) and ``export_state()``
/ ``import_state(data)`` (without them: no state, and a state given is ignored). The
``export_collector`` / ``export_delta`` / ``export_metric`` helpers turn it into the
``Plugin`` and ``Collect`` / ``Diff`` / ``Derive`` classes componentize-py expects
from the app module::

    Plugin, Collect = export_collector(MyCollector)

Errors are plain exceptions: a ``ValueError`` from ``__init__`` refuses the plugin,
one from ``import_state`` refuses the state, one raised while handling a line becomes
a record error of that line (see ``lines.for_each``).
"""

from .state import StateReader, StateWriter
from . import lines
from .world import export_collector, export_delta, export_metric
from .values import counter, event, field, gauge, label, now_ms, update
from .series import Selection, key

__all__ = [
    "lines", "StateReader", "StateWriter", "export_collector", "export_delta", "export_metric",
    "counter", "event", "field", "gauge", "label", "now_ms", "update", "Selection", "key",
]
