//! Shared fixtures: the components built from `plugins/` and one runtime per test binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_core::sample::Sample;
use wasmeter_plugin::{Runtime, RuntimeConfig};

/// The path of a component built by `scripts/build-plugins.sh`.
pub fn component(name: &str) -> PathBuf {
    let dir = std::env::var_os("WASMETER_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/plugins/wasm32-wasip2/release")
        });
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the plugins first with scripts/build-plugins.sh",
        path.display()
    );
    path
}

/// One runtime shared by the tests of a binary (each engine reserves address space).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            max_instances: 64,
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
}

/// Config pairs from string literals.
pub fn config(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The value of a label-matching sample, panicking with the samples seen if absent.
pub fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .rev()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name}{labels:?} in {samples:#?}"))
        .value
}

/// A topic state from `(name, number)` pairs.
pub fn numbers(pairs: &[(&str, f64)]) -> TopicState {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), FieldValue::Number(*v)))
        .collect()
}

/// Waits for `what` at most 10 s: far less than the 30 s a sleeping guest asks
/// for, far more than a call timeout of the tests. Panics naming `what` if the
/// host waited for the guest instead of abandoning the call.
pub async fn within_bound<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| {
            panic!("{what}: not abandoned within 10 s; the host waited for the guest")
        })
}

/// A buffer that collects the `tracing` output of the current thread while the
/// returned guard lives (tests run the guest on their own current-thread runtime).
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Starts capturing; keep the guard alive while the calls of interest run.
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        // With a single dispatcher registered, tracing takes a callsite's
        // interest from the default of whichever thread reaches it first
        // (tokio-rs/tracing#3611): a test running the same plugin code at the
        // same time without a capture would turn the callsite off for every
        // thread, this one included, and the capture would see nothing. A
        // second dispatcher, kept for the process, makes tracing ask every
        // registered one instead.
        static ANCHOR: OnceLock<tracing::Dispatch> = OnceLock::new();
        ANCHOR.get_or_init(|| tracing::Dispatch::new(tracing_subscriber::registry()));
        let capture = LogCapture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        (capture, guard)
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
