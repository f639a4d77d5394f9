"""Trades: parsing of values and the per-symbol book (``wasmeter_sdk::trades``).

Same topics, samples, messages and state (schema ``trades`` v1) as the Rust SDK, so a
Python collector and a Rust one are interchangeable, state included.
"""

import re

from . import values
from .state import StateReader, StateWriter

METRICS = ["trade_price", "trade_qty", "trades_total", "trade_volume_total"]
_FLOAT = re.compile(r"[+-]?(inf|infinity|nan|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?)\Z", re.I)
_INT = re.compile(r"[+-]?\d+\Z")


def _prefix(key, value):
    prefix = value.strip().rstrip("/")
    if not values.is_valid_topic(prefix):
        raise ValueError(
            f"config `{key}`: `{value}` is not a valid topic "
            "(`/`-separated segments of [A-Za-z0-9_.:-])"
        )
    return prefix


def parse_symbol(what, text):
    symbol = text.strip()
    if not symbol:
        raise ValueError(f"{what}: empty (a symbol is required)")
    if not values.is_valid_topic_segment(symbol):
        raise ValueError(f"{what}: `{symbol}` may only contain letters, digits and `_.:-`")
    return symbol


def parse_number(what, text):
    t = text.strip()
    if not _FLOAT.match(t):
        raise ValueError(f"{what}: `{t}` is not a number")
    v = float(t)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{what}: `{t}` is not a finite number")
    return v


def parse_qty(what, text):
    qty = parse_number(what, text)
    if qty < 0:
        raise ValueError(f"{what}: `{text.strip()}` is negative")
    return qty


def parse_ts(what, text):
    t = text.strip()
    if not t:
        return 0
    v = int(t) if _INT.match(t) else None
    if v is None or not -(2**63) <= v < 2**63:
        raise ValueError(f"{what}: `{t}` is not an integer (Unix ms)")
    if v < 0:
        raise ValueError(f"{what}: `{t}` is negative")
    return v


class TradeBook:
    """Running count and volume per symbol; turns each trade into the output."""

    def __init__(self, config):
        self.prefix = _prefix("topic_prefix", config.get("topic_prefix", "trades"))
        self.tape = None
        if "tape_prefix" in config:
            tape = _prefix("tape_prefix", config["tape_prefix"])
            if tape == self.prefix:
                raise ValueError(
                    f"config `tape_prefix`: `{tape}` is also the `topic_prefix`; a topic is "
                    "either a stream of trades or the latest trade, not both"
                )
            self.tape = tape
        self.totals = {}

    def emits(self):
        out = METRICS + [f"{self.prefix}/*"]
        return out + [f"{self.tape}/*"] if self.tape else out

    def record(self, symbol, price, qty, ts, out):
        count, volume = self.totals.get(symbol, (0, 0.0))
        count, volume = count + 1, volume + qty
        self.totals[symbol] = (count, volume)
        field_ts = ts if ts > 0 else values.now_ms()
        if self.tape:
            fields = [("price", price), ("qty", qty), ("ts", field_ts), ("trade", count)]
            out.events.append(values.event(f"{self.tape}/{symbol}", fields))
        fields = [("price", price), ("qty", qty), ("ts", field_ts), ("count", count), ("volume", volume)]
        out.updates.append(values.update(f"{self.prefix}/{symbol}", fields))
        labels = [("symbol", symbol)]
        out.samples.append(values.gauge("trade_price", price, labels, ts))
        out.samples.append(values.gauge("trade_qty", qty, labels, ts))
        out.samples.append(values.counter("trades_total", count, labels, ts))
        out.samples.append(values.counter("trade_volume_total", volume, labels, ts))

    def export_state(self):
        w = StateWriter("trades", 1).count(len(self.totals))
        for symbol in sorted(self.totals):
            count, volume = self.totals[symbol]
            w.str(symbol).u64(count).f64(volume)
        return w.finish()

    def import_state(self, data):
        r = StateReader(data, "trades")
        if r.version > 1:
            raise ValueError(f"state: trades v{r.version} is newer than this plugin (v1)")
        totals = {}
        for _ in range(r.count()):
            symbol = r.str()
            totals[symbol] = (r.u64(), r.f64())
        r.finish()
        self.totals = totals
