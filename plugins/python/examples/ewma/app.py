"""ewma in Python: exponentially weighted moving average per series.

The twin of the Rust `plugins/ewma`: config `metrics` (comma list, default every gauge
not ending in `_ewma`) and `alpha` (default 0.2, in (0, 1]); for each selected sample
the gauge `<name>_ewma` with its labels and timestamp. State: schema `ewma` v1, the
same bytes as the Rust plugin's, so a hot swap between them keeps the averages.
"""

from wasmeter_guest import StateReader, StateWriter, export_metric
from wasmeter_guest.series import Selection, key
from wasmeter_guest.values import gauge, is_valid_metric_name


class Ewma:
    NAME, VERSION = "ewma", "0.1.0"
    DESCRIPTION = "Exponentially weighted moving average per series, in Python"

    @staticmethod
    def info(config):
        return {"emits": ["*_ewma"], "stateful": True}

    def __init__(self, config):
        raw = config.get("alpha", "0.2").strip()
        try:
            self.alpha = float(raw)
        except ValueError:
            raise ValueError(f"config `alpha`: `{raw}` is not a valid f64") from None
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"config `alpha`: `{raw}` must be in (0, 1]")
        self.selection = Selection(config, "metrics", skip_suffixes=("_ewma",))
        self.series = {}  # key -> [name, [(label, value)], average]

    def export_state(self):
        w = StateWriter("ewma", 1).count(len(self.series))
        for k in sorted(self.series):
            name, labels, value = self.series[k]
            w.str(name).labels(labels).f64(value)
        return w.finish()

    def import_state(self, data):
        r = StateReader(data, "ewma")
        series = {}
        for _ in range(r.count()):
            name, labels, value = r.str(), r.labels(), r.f64()
            series[key(name, labels)] = [name, labels, value]
        r.finish()
        self.series = series

    def reads(self, name, kind):
        return self.selection.reads(name, kind)

    def on_samples(self, samples):
        out = []
        for s in samples:
            if not self.selection.matches(s):
                continue
            k = key(s.name, s.labels)
            avg = self.series.get(k)
            if avg is None:
                avg = self.series[k] = [s.name, [(lb.name, lb.value) for lb in s.labels], s.value]
            else:
                avg[2] = self.alpha * s.value + (1.0 - self.alpha) * avg[2]
            name = s.name + "_ewma"
            if is_valid_metric_name(name):
                labels = [(lb.name, lb.value) for lb in s.labels]
                out.append(gauge(name, avg[2], labels, s.timestamp_ms))
        return out


Plugin, Derive = export_metric(Ewma)
