//! Integration tests: a real server on a loopback port, real WebSocket, SSE and
//! HTTP clients. Waits use generous timeouts; nothing asserts on durations.

mod abuse;
mod auth;
mod compact;
mod http_limits;
mod lifecycle;
mod origin;
mod paging;
mod rest;
mod sse;
mod stall;
mod streams;
mod support;
mod tls;
mod ws;
