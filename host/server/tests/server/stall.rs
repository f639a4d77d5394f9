//! Readers that stop reading while updates flow: conflated to the latest state,
//! not fed a kernel buffer of stale updates, and not closed for missed
//! heartbeats while their socket is full.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use wasmeter_hub::HubConfig;
use wasmeter_server::ServerConfig;

use crate::support::*;

/// A client receive buffer small enough that the server's socket fills quickly.
const CLIENT_RECV_BUFFER: u32 = 4096;

/// Publishes one update of `topic` with a value and a 200-byte blob.
fn publish_one(server: &TestServer, topic: &str, i: u64) {
    let blob = "z".repeat(200);
    let key = format!("k{}", i % 7);
    server.publish(
        topic,
        &[
            ("n", num(i as f64)),
            ("blob", text(&blob)),
            (&key, num(1.0)),
        ],
        &[],
    );
}

/// Reads until the client holds `topic` at the hub's latest seq; returns the
/// frames read and how many of them were snapshots.
async fn read_to_latest(ws: &mut Ws, applied: &mut Applied, server: &TestServer) -> (u64, u64) {
    let last = server.hub.snapshot("stall/t").unwrap().0.seq;
    let (mut frames, mut snapshots) = (0, 0);
    while applied.seq("stall/t") < last {
        let f = ws.recv().await;
        if f["type"] == "snapshot" {
            snapshots += 1;
        }
        applied.apply(&f);
        frames += 1;
    }
    (frames, snapshots)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stalls_gets_the_latest_state_not_a_backlog() {
    let cfg = ServerConfig {
        write_timeout_ms: 120_000,
        ..config()
    };
    let server = TestServer::start(cfg, HubConfig::default()).await;
    publish_one(&server, "stall/t", 0);
    let mut ws = Ws::connect_with(server.addr, "", None, Some(CLIENT_RECV_BUFFER)).await;
    ws.subscribe(json!({"topics": ["stall/t"]})).await;
    let mut applied = Applied::default();
    applied.apply(&ws.recv().await);

    // ~6 MB of updates over about two seconds while the client reads nothing.
    let total = 20_000u64;
    for batch in 0..20 {
        for i in 1..=total / 20 {
            publish_one(&server, "stall/t", batch * (total / 20) + i);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (frames, snapshots) = read_to_latest(&mut ws, &mut applied, &server).await;
    // What was already on its way (a batch, the kernel's unsent bytes, the small
    // receive buffer: a few hundred frames at most), then snapshots; without a
    // bound on unsent bytes the kernel holds thousands of stale updates.
    assert!(
        frames < 500,
        "{frames} frames after the stall for {total} updates: stale updates were buffered"
    );
    assert!(snapshots >= 1, "conflated to a snapshot");
    assert_eq!(applied.state("stall/t"), server.state_json("stall/t"));
    let m = server.state.metrics();
    assert!(m.conflations >= 1, "{m:?}");
    assert_eq!(m.slow_consumer_disconnects, 0);
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_stalled_past_the_heartbeat_timeout_with_a_full_socket_is_conflated() {
    let cfg = ServerConfig {
        ping_interval_ms: 200,
        client_timeout_ms: 1_000,
        write_timeout_ms: 120_000,
        ..config()
    };
    let server = TestServer::start(cfg.clone(), HubConfig::default()).await;
    publish_one(&server, "stall/t", 0);
    let mut ws = Ws::connect_with(server.addr, "", None, Some(CLIENT_RECV_BUFFER)).await;
    ws.subscribe(json!({"topics": ["stall/t"]})).await;
    let mut applied = Applied::default();
    applied.apply(&ws.recv().await);

    // Updates keep flowing for three heartbeat timeouts; the client reads nothing
    // and so cannot answer pings either.
    let stall = Duration::from_millis(3 * cfg.client_timeout_ms);
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < stall {
        for _ in 0..500 {
            i += 1;
            publish_one(&server, "stall/t", i);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, snapshots) = read_to_latest(&mut ws, &mut applied, &server).await;
    assert!(snapshots >= 1, "conflated to a snapshot");
    assert_eq!(applied.state("stall/t"), server.state_json("stall/t"));
    // Still open and answering.
    ws.send(json!({"type":"ping","id":1})).await;
    loop {
        let f = ws.recv().await;
        if f["type"] == "pong" {
            assert_eq!(f["id"], 1);
            break;
        }
    }
    let m = server.state.metrics();
    assert_eq!((m.heartbeat_timeouts, m.slow_consumer_disconnects), (0, 0));
    assert!(m.conflations >= 1, "{m:?}");
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_reader_whose_socket_stays_full_is_dropped_after_the_write_timeout() {
    let cfg = ServerConfig {
        write_timeout_ms: 500,
        ..config()
    };
    let server = TestServer::start(cfg, HubConfig::default()).await;
    publish_one(&server, "stall/t", 0);
    // A reader that sends its request and then never reads, with a small buffer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(CLIENT_RECV_BUFFER).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut stalled,
        b"GET /sse?topics=stall/t HTTP/1.0\r\nHost: test\r\n\r\n",
    )
    .await
    .unwrap();
    // And one that reads everything, in a task of its own; it reports the
    // latest `n` it holds.
    let mut reading = Sse::connect(server.addr, "/sse?topics=stall/t", None).await;
    assert_eq!(reading.status, 200);
    let (latest_tx, mut latest) = tokio::sync::watch::channel(0.0);
    let reader = tokio::spawn(async move {
        while let Some(ev) = reading.next().await {
            assert_ne!(ev.event, "error", "{:?}", ev.data);
            let n = ev.data["delta"]["n"]
                .as_f64()
                .or_else(|| ev.data["state"]["n"].as_f64());
            if let Some(n) = n {
                latest_tx.send_replace(n);
            }
        }
    });

    // Updates keep coming: the stalled reader's socket fills, and its write then
    // waits past the timeout.
    let mut i = 1;
    let start = Instant::now();
    while server.state.metrics().slow_consumer_disconnects == 0 {
        assert!(
            start.elapsed() < WAIT,
            "the stalled SSE reader was never dropped"
        );
        publish_one(&server, "stall/t", i);
        i += 1;
        tokio::task::yield_now().await;
    }
    // Only the stalled one: the reader still gets updates.
    publish_one(&server, "stall/t", i);
    tokio::time::timeout(WAIT, latest.wait_for(|n| *n == i as f64))
        .await
        .expect("the reading SSE client got the last update")
        .unwrap();
    assert_eq!(server.state.metrics().slow_consumer_disconnects, 1);
    reader.abort();
}
