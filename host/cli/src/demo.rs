//! The demo feed: a producer that keeps appending realistic trades for several
//! symbols to `feed/trades.csv` (CSV) and `feed/history.jsonl` (JSON lines, with
//! Binance-style field names), the symbols' 24 h tickers to `feed/ticker.jsonl`
//! (each line a whole ticker of which 2-3 fields changed, see `demo/ticker.rs`), and
//! rotates the files when they grow large.

mod ticker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use ticker::Ticker;

/// Symbols and their starting prices.
const SYMBOLS: [(&str, f64); 6] = [
    ("BTC-USD", 64_000.0),
    ("ETH-USD", 3_100.0),
    ("SOL-USD", 150.0),
    ("ADA-USD", 0.45),
    ("DOGE-USD", 0.12),
    ("XRP-USD", 0.55),
];

/// The CSV file is rotated (renamed to `trades.csv.1`) beyond this size.
const ROTATE_BYTES: u64 = 8 << 20;

/// How the demo feed runs.
#[derive(Debug, Clone)]
pub struct DemoFeed {
    /// The directory the files are written to.
    pub dir: PathBuf,
    /// Trades per second across all symbols.
    pub trades_per_sec: u32,
    /// Stop after this many trades (`None`: never), for reproducible runs.
    pub limit: Option<u64>,
}

/// A small deterministic generator (xorshift64*): the feed needs plausible noise,
/// not cryptographic randomness.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl DemoFeed {
    /// Appends trades until `cancel` (or the limit); returns write errors.
    pub async fn run(self, cancel: CancellationToken) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let csv_path = self.dir.join("trades.csv");
        let jsonl_path = self.dir.join("history.jsonl");
        let ticker_path = self.dir.join("ticker.jsonl");
        let mut prices: Vec<f64> = SYMBOLS.iter().map(|(_, p)| *p).collect();
        let seed = wasmeter_plugin::unix_now_ms() as u64 | 1;
        let mut noise = Noise(seed);
        let now = wasmeter_plugin::unix_now_ms();
        let mut tickers: Vec<Ticker> = SYMBOLS
            .iter()
            .map(|(symbol, price)| Ticker::new(symbol, *price, now, &mut noise))
            .collect();
        // Every ticker is written whole once, then moved by the trades.
        let first: String = tickers.iter().map(Ticker::line).collect();
        append(&ticker_path, first.as_bytes()).await?;
        let batches_per_sec = 20u32;
        let per_batch = (self.trades_per_sec / batches_per_sec).max(1);
        let mut interval =
            tokio::time::interval(Duration::from_millis(1000 / u64::from(batches_per_sec)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut left = self.limit.unwrap_or(u64::MAX);
        while left > 0 {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = interval.tick() => {}
            }
            let mut csv = String::new();
            let mut jsonl = String::new();
            let mut traded = [false; SYMBOLS.len()];
            let ts = wasmeter_plugin::unix_now_ms();
            let batch = u64::from(per_batch).min(left);
            left -= batch;
            for _ in 0..batch {
                let i = (noise.next() * SYMBOLS.len() as f64) as usize % SYMBOLS.len();
                traded[i] = true;
                // A random walk with a little drift back to the start price.
                let start = SYMBOLS[i].1;
                let step = (noise.next() - 0.5) * 0.002 + (start - prices[i]) / start * 0.001;
                prices[i] *= 1.0 + step;
                let decimals = if start < 1.0 { 5 } else { 2 };
                let price = format!("{:.*}", decimals, prices[i]);
                let qty = format!("{:.4}", (noise.next() * 2.0).powi(3) + 0.001);
                let side = if noise.next() < 0.5 { "buy" } else { "sell" };
                csv.push_str(&format!("{},{price},{qty},{ts}\n", SYMBOLS[i].0));
                jsonl.push_str(&format!(
                    "{{\"s\":\"{}\",\"p\":\"{price}\",\"q\":\"{qty}\",\"T\":{ts},\"side\":\"{side}\"}}\n",
                    SYMBOLS[i].0
                ));
            }
            // One ticker line per symbol traded in the batch: the batch is read as
            // one chunk, so a line is one update, not merged with the next.
            let mut ticker = String::new();
            for (i, t) in tickers.iter_mut().enumerate().filter(|(i, _)| traded[*i]) {
                t.step(prices[i], &mut noise);
                ticker.push_str(&t.line());
            }
            append(&csv_path, csv.as_bytes()).await?;
            append(&jsonl_path, jsonl.as_bytes()).await?;
            append(&ticker_path, ticker.as_bytes()).await?;
            for path in [&csv_path, &jsonl_path, &ticker_path] {
                rotate_if_large(path).await?;
            }
        }
        tracing::info!(trades = self.limit, "demo feed finished");
        Ok(())
    }
}

async fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    file.write_all(bytes).await?;
    file.flush().await
}

/// Renames a large file to `<name>.1` (replacing the previous one); the next append
/// creates a new file. The watcher drains the renamed file before the new one.
async fn rotate_if_large(path: &Path) -> std::io::Result<()> {
    if tokio::fs::metadata(path).await?.len() < ROTATE_BYTES {
        return Ok(());
    }
    let mut rotated = path.as_os_str().to_owned();
    rotated.push(".1");
    tokio::fs::rename(path, PathBuf::from(rotated)).await
}
