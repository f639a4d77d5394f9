//! Connections come and go without leaving anything behind; shutdown is graceful.

use serde_json::json;
use wasmeter_hub::HubConfig;
use wasmeter_server::close;

use crate::support::*;

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connect_disconnect_cycles_leave_counts_at_baseline() {
    let server = TestServer::default().await;
    server.publish("c/a", &[("n", num(1.0))], &[]);
    // Warm up once, then take the baseline with no client connected.
    Ws::connect(server.addr, "").await.close().await;
    server
        .eventually("warm-up gone", |s| s.state.metrics().connection_tasks == 0)
        .await;
    let baseline = alive_tasks();

    for i in 0..1000u32 {
        let mut ws = Ws::connect(server.addr, "").await;
        ws.subscribe(json!({"topics": ["c/*", "later/*"]})).await;
        assert_eq!(ws.recv().await["type"], "snapshot");
        if i % 2 == 0 {
            ws.close().await;
        } else {
            // Abrupt: drop the TCP connection without a close frame.
            drop(ws);
        }
        if i % 100 == 0 {
            server.publish("c/a", &[("n", num(i as f64))], &[]);
        }
    }
    server
        .eventually(
            "connections, tasks, slots and watchers back to baseline",
            |s| {
                let m = s.state.metrics();
                let h = s.hub.stats();
                m.connections_active == 0
                    && m.connection_tasks == 0
                    && h.slots == 0
                    && h.watchers == 0
                    && alive_tasks() <= baseline
            },
        )
        .await;
    assert_eq!(server.state.metrics().connections_total, 1001);
}

#[tokio::test]
async fn shutdown_closes_websockets_with_1001_and_ends_sse_streams() {
    let mut server = TestServer::start(config(), HubConfig::default()).await;
    server.publish("s/a", &[("n", num(1.0))], &[]);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut ws = Ws::connect(server.addr, "").await;
        ws.subscribe(json!({"topics": ["s/a"]})).await;
        ws.recv().await;
        clients.push(ws);
    }
    let mut sse = Sse::connect(server.addr, "/sse?topics=s/a", None).await;
    assert_eq!(sse.next().await.unwrap().event, "subscribed");
    assert_eq!(sse.next().await.unwrap().event, "snapshot");

    let state = server.state.clone();
    let (_, codes) = tokio::join!(server.shutdown(), async {
        let mut codes = Vec::new();
        for ws in &mut clients {
            codes.push(ws.close_code().await);
        }
        codes
    });
    assert_eq!(codes, vec![Some(close::GOING_AWAY); 3]);
    assert!(sse.next().await.is_none(), "the SSE stream ends");
    let m = state.metrics();
    assert_eq!((m.connections_active, m.connection_tasks), (0, 0));
}
