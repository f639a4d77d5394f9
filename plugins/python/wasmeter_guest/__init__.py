"""wasmeter guest SDK for Python plugins (built with componentize-py).

A plugin is a class with ``info(config)``, ``__init__(config)`` (raise ``ValueError``
to refuse the config, naming the key), ``export_state()`` / ``import_state(data)``
and the call of its world (``collect``, or ``on_samples`` / ``on_tick``). The
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

__all__ = ["lines", "StateReader", "StateWriter", "export_collector", "export_delta", "export_metric"]
