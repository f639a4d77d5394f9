//! wasmeter-server
