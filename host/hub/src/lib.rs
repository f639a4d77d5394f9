//! wasmeter-hub
