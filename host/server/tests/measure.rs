//! Measurements, not tests (ignored by default): server-side heap per idle
//! WebSocket connection, and a rough fan-out rate over loopback.
//!
//! Run with: `cargo test -p wasmeter-server --release --test measure -- --ignored --nocapture --test-threads 1`
//!
//! The server runs on its own runtime whose threads are tagged; a counting
//! allocator attributes every allocation and free to the tagged (server) or
//! untagged (client) side. Idle = connected and subscribed to one topic, after
//! the snapshot was delivered.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use wasmeter_core::change::TopicChange;
use wasmeter_core::delta::Delta;
use wasmeter_core::field::{FieldValue, TopicState};
use wasmeter_hub::{Hub, HubConfig};
use wasmeter_server::{ServerConfig, ServerState, router, serve};

struct Counting;

static SERVER_BYTES: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static SERVER_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn on_server() -> bool {
    SERVER_THREAD.try_with(|s| s.get()).unwrap_or(false)
}

// SAFETY: delegates to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if on_server() {
            SERVER_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if on_server() {
            SERVER_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if on_server() {
            SERVER_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
#[ignore = "a measurement, run on demand"]
fn idle_connection_heap_bytes() {
    const N: usize = 2000;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_start(|| SERVER_THREAD.with(|s| s.set(true)))
        .build()
        .unwrap();
    let hub = Arc::new(Hub::new(HubConfig::default()));
    let state = ServerState::new(hub.clone(), ServerConfig::default()).unwrap();
    hub.publish(TopicChange {
        topic: "idle/t".into(),
        delta: Delta::default(),
        stale: vec![],
        state: Arc::new(TopicState::from([(
            "n".to_string(),
            FieldValue::Number(1.0),
        )])),
        timestamp_ms: 0,
        event: false,
    })
    .unwrap();
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let serve_state = state.clone();
    server_rt.spawn(async move {
        serve(
            listener,
            router(serve_state.clone()),
            serve_state,
            std::future::pending(),
        )
        .await
    });

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let connect = || async {
        let cfg = WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(0);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
            format!("ws://{addr}/ws"),
            Some(cfg),
            false,
        )
        .await
        .unwrap();
        ws.send(Message::text(r#"{"type":"subscribe","topics":["idle/*"]}"#))
            .await
            .unwrap();
        ws.next().await.unwrap().unwrap();
        ws.next().await.unwrap().unwrap();
        ws
    };
    let settle = || std::thread::sleep(std::time::Duration::from_millis(500));
    // Warm up lazily allocated runtime structures.
    let warm: Vec<_> = client_rt
        .block_on(async { futures_util::future::join_all((0..50).map(|_| connect())).await });
    settle();
    let before = SERVER_BYTES.load(Ordering::Relaxed);
    let conns: Vec<_> = client_rt.block_on(async {
        let mut v = Vec::with_capacity(N);
        for _ in 0..N {
            v.push(connect().await);
        }
        v
    });
    settle();
    let after = SERVER_BYTES.load(Ordering::Relaxed);
    let per = (after - before) as f64 / N as f64;
    println!(
        "server heap per idle connection: {per:.0} bytes ({} connections, {} bytes total)",
        N,
        after - before
    );
    assert_eq!(state.metrics().connections_active as usize, N + warm.len());
    drop(conns);
    drop(warm);
}

#[test]
#[ignore = "a measurement, run on demand"]
fn fan_out_rate() {
    const SUBSCRIBERS: usize = 1000;
    const MESSAGES: u64 = 4000;
    // Published in bursts of 16 every 8 ms (~2,000 messages/s, ~2 M frames/s asked of the server).
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let hub = Arc::new(Hub::new(HubConfig {
        history_per_topic: 2048,
        ..HubConfig::default()
    }));
    let config = ServerConfig {
        conflate_after_updates: 1000,
        ..ServerConfig::default()
    };
    let state = ServerState::new(hub.clone(), config).unwrap();
    let change = |n: u64| TopicChange {
        topic: "fan/t".into(),
        delta: Delta {
            changed: vec![("price".into(), FieldValue::Number(n as f64))],
            removed: vec![],
        },
        stale: vec![],
        state: Arc::new(TopicState::from([
            ("price".to_string(), FieldValue::Number(n as f64)),
            ("symbol".to_string(), FieldValue::Text("BTC-USD".into())),
        ])),
        timestamp_ms: 0,
        event: false,
    };
    hub.publish(change(0)).unwrap();
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let serve_state = state.clone();
    server_rt.spawn(async move {
        serve(
            listener,
            router(serve_state.clone()),
            serve_state,
            std::future::pending(),
        )
        .await
    });
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let last = MESSAGES + 1;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let clients = std::thread::spawn(move || {
        client_rt.block_on(async move {
            let mut tasks = Vec::new();
            for _ in 0..SUBSCRIBERS {
                let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
                    .await
                    .unwrap();
                ws.send(Message::text(r#"{"type":"subscribe","topics":["fan/t"]}"#))
                    .await
                    .unwrap();
                ws.next().await.unwrap().unwrap();
                ws.next().await.unwrap().unwrap();
                tasks.push(tokio::spawn(async move {
                    let mut frames = 0u64;
                    while let Some(Ok(Message::Text(t))) = ws.next().await {
                        frames += 1;
                        if t.as_str().contains(&format!("\"seq\":{last},")) {
                            break;
                        }
                    }
                    frames
                }));
            }
            ready_tx.send(()).unwrap();
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap();
            }
            total
        })
    });
    ready_rx.recv().unwrap();
    let start = std::time::Instant::now();
    for n in 1..=MESSAGES {
        hub.publish(change(n)).unwrap();
        if n % 16 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(8));
        }
    }
    let frames = clients.join().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let m = state.metrics();
    println!(
        "fan-out: {frames} frames to {SUBSCRIBERS} subscribers in {secs:.2} s = {:.0} frames/s \
         (published {MESSAGES}, conflations {}, server bytes {})",
        frames as f64 / secs,
        m.conflations,
        m.bytes_sent_json
    );
}
