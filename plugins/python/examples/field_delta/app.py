"""field-delta in Python: the twin of plugins/field-delta (world ``delta``).

``diff``: the fields of ``current`` that are new or differ from ``previous`` (numbers:
``|a - b| > epsilon``, NaN equal only to NaN; text and flags: ``!=``; a change of
type always counts), and the names in ``previous`` but not in ``current``; both
sorted by name. ``apply``: ``previous`` with ``changed`` set and ``removed``
deleted, sorted by name; a name both changed and removed is an error. Stateless.
"""

import math

from wasmeter_guest import export_delta
from wit_world.imports.types import FieldValue_Number


def differs(a, b, epsilon):
    if type(a) is not type(b):
        return True
    if isinstance(a, FieldValue_Number):
        x, y = a.value, b.value
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) != math.isnan(y)
        return abs(x - y) > epsilon
    return a.value != b.value


class FieldDelta:
    NAME = "field-delta"
    VERSION = "0.1.0"
    DESCRIPTION = "Per-field topic deltas, with an absolute tolerance for numbers"

    @staticmethod
    def info(config):
        return {"emits": [], "stateful": False}

    def __init__(self, config):
        raw = config.get("epsilon", "0")
        try:
            self.epsilon = float(raw)
        except ValueError:
            raise ValueError(f"config `epsilon`: `{raw}` is not a number") from None
        if not math.isfinite(self.epsilon) or self.epsilon < 0:
            raise ValueError(f"config `epsilon`: {raw} must be finite and >= 0")

    def export_state(self):
        return None

    def import_state(self, data):
        pass

    def diff(self, topic, previous, current):
        # Inputs in any order; the last of a duplicate name wins.
        before = {f.name: f.value for f in previous}
        now = {f.name: f for f in current}
        changed = [f for f in now.values() if f.name not in before or differs(before[f.name], f.value, self.epsilon)]
        removed = [name for name in before if name not in now]
        return sorted(changed, key=lambda f: f.name.encode()), sorted(removed, key=str.encode)

    def apply(self, previous, changed, removed):
        gone = set(removed)
        for f in changed:
            if f.name in gone:
                raise ValueError(f"field `{f.name}` is both changed and removed")
        state = {f.name: f for f in previous if f.name not in gone}
        for f in changed:
            state[f.name] = f
        return [state[name] for name in sorted(state, key=str.encode)]


Plugin, Diff = export_delta(FieldDelta)
