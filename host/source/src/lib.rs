//! wasmeter-source
