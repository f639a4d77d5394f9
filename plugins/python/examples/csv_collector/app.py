"""csv-collector in Python: trades from `symbol,price,qty,ts` lines.

The twin of the Rust `plugins/csv-collector` for its default columns: same topics,
samples, record errors and hot-swap state. Config: `topic_prefix`, `tape_prefix`,
`delimiter` (one character, `tab` or `\\t`); `columns` only as `symbol,price,qty,ts`.
"""

from wasmeter_guest import export_collector, lines
from wasmeter_guest.trades import TradeBook, parse_number, parse_qty, parse_symbol, parse_ts

COLUMNS = "symbol,price,qty,ts"


class CsvCollector:
    NAME, VERSION = "csv-collector", "0.1.0"
    DESCRIPTION = "Trades from CSV lines (symbol,price,qty,ts), in Python"

    @staticmethod
    def info(config):
        try:
            emits = TradeBook(config).emits()
        except ValueError:
            emits = []
        return {"emits": emits, "stateful": True}

    def __init__(self, config):
        d = config.get("delimiter", ",")
        self.delimiter = "\t" if d in ("\\t", "tab", "\t") else d
        if len(self.delimiter) != 1 or self.delimiter in '\n"':
            raise ValueError(f"config `delimiter`: `{d}` must be a single character")
        columns = ",".join(c.strip() for c in config.get("columns", COLUMNS).split(","))
        if columns != COLUMNS:
            raise ValueError(f"config `columns`: only `{COLUMNS}` is supported by this plugin")
        self.book = TradeBook(config)

    def export_state(self):
        return self.book.export_state()

    def import_state(self, data):
        self.book.import_state(data)

    def collect(self, source, chunk, out):
        lines.for_each(chunk, out, lambda text: self.line(text.strip(), out))

    def line(self, text, out):
        if not text or text.startswith("#"):
            return
        cells = [c.strip() for c in text.split(self.delimiter)]
        if len(cells) not in (3, 4):
            raise ValueError(f"expected 4 columns ({COLUMNS}), found {len(cells)}")
        symbol = parse_symbol("symbol", cells[0])
        price = parse_number("price", cells[1])
        qty = parse_qty("qty", cells[2])
        ts = parse_ts("ts", cells[3]) if len(cells) == 4 else 0
        self.book.record(symbol, price, qty, ts, out)


Plugin, Collect = export_collector(CsvCollector)
