// csv-collector in JavaScript: trades from `symbol,price,qty,ts` lines.
//
// The twin of the Rust `plugins/csv-collector` for its default columns: same topics,
// samples, record errors and hot-swap state. Config: `topic_prefix`, `tape_prefix`,
// `delimiter` (one character, `tab` or `\t`); `columns` only as `symbol,price,qty,ts`.

import { exportCollector, lines } from "../../wasmeter-guest/index.js";
import { TradeBook, parseNumber, parseQty, parseSymbol, parseTs } from "../../wasmeter-guest/trades.js";

const COLUMNS = "symbol,price,qty,ts";

class CsvCollector {
  static NAME = "csv-collector";
  static VERSION = "0.1.0";
  static DESCRIPTION = "Trades from CSV lines (symbol,price,qty,ts), in JavaScript";

  static info(config) {
    let emits = [];
    try {
      emits = new TradeBook(config).emits();
    } catch {}
    return { emits, stateful: true };
  }

  constructor(config) {
    const d = config.get("delimiter") ?? ",";
    this.delimiter = ["\\t", "tab", "\t"].includes(d) ? "\t" : d;
    if ([...this.delimiter].length !== 1 || this.delimiter === "\n" || this.delimiter === '"') {
      throw `config \`delimiter\`: \`${d}\` must be a single character`;
    }
    const columns = (config.get("columns") ?? COLUMNS).split(",").map((c) => c.trim()).join(",");
    if (columns !== COLUMNS) throw `config \`columns\`: only \`${COLUMNS}\` is supported by this plugin`;
    this.book = new TradeBook(config);
  }

  exportState() {
    return this.book.exportState();
  }

  importState(data) {
    this.book.importState(data);
  }

  collect(source, chunk, out) {
    lines.forEach(chunk, out, (text) => this.line(text.trim(), out));
  }

  line(text, out) {
    if (!text || text.startsWith("#")) return;
    const cells = text.split(this.delimiter).map((c) => c.trim());
    if (cells.length !== 3 && cells.length !== 4) {
      throw `expected 4 columns (${COLUMNS}), found ${cells.length}`;
    }
    const symbol = parseSymbol("symbol", cells[0]);
    const price = parseNumber("price", cells[1]);
    const qty = parseQty("qty", cells[2]);
    const ts = cells.length === 4 ? parseTs("ts", cells[3]) : 0n;
    this.book.record(symbol, price, qty, ts, out);
  }
}

export const { plugin, collect } = exportCollector(CsvCollector);
