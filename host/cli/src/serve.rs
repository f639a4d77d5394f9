//! `wasmeter serve`: assembles sources, pipelines, hub, server and admin API, and
//! shuts them down in order.
//!
//! Shutdown, step by step (SIGINT or SIGTERM):
//! 1. the admin API and the plugin-file watcher stop; sources and the demo feed are
//!    cancelled; file sources stop at a record boundary;
//! 2. each pipeline drains what its sources had sent, then writes a final checkpoint
//!    (offsets + plugin state), so a restart neither loses nor repeats a record;
//!    pipelines still running after `runtime.shutdown_timeout_ms` (a plugin call
//!    that does not end) are aborted and named in the log: they resume from
//!    their last periodic checkpoint;
//! 3. the server sends close frames (1001) to every subscriber and waits for every
//!    connection to end.
//!
//! SIGHUP reloads the config file (see [`crate::reload`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::export::Export;
use crate::history::History;
use wasmeter_hub::{Hub, HubConfig};
use wasmeter_pipeline::{Broker, SeriesStore, StateConfig, TopicOwners, Topics};
use wasmeter_plugin::Runtime;
use wasmeter_server::{ServerState, router};

use wasmeter_control::{Monitor, Shared, Supervisor, Timeouts};

use crate::admin::auth::{self, TokenOrigin};
use crate::broker::{BrokerType, Cluster, HubBroker};
use crate::config::Config;
use crate::demo::DemoFeed;

/// Options of `serve` beyond the config file.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Run the demo feed into this directory.
    pub demo: Option<DemoFeed>,
    /// The config file, for reloads (`None`: the built-in demo config).
    pub config_path: Option<PathBuf>,
}

/// Runs the host until SIGINT/SIGTERM (or `stop` is cancelled).
pub async fn serve(
    config: Config,
    options: ServeOptions,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // Before any file is opened: tailing many files needs descriptors, and the
    // sources keep to a share of this limit (it logs what it did).
    let _ = wasmeter_source::raise_nofile_limit();
    let data_dir = config.resolve(&config.data_dir);
    let plugins_dir = config.resolve(&config.admin.plugins_dir);
    // Where `plugin load --remote` reads: there from the start (the demo's too).
    if config.admin.enabled {
        std::fs::create_dir_all(&plugins_dir).with_context(|| {
            format!(
                "{}: admin.plugins_dir: cannot create {}",
                config.origin,
                plugins_dir.display()
            )
        })?;
    }
    // Private to this user, and so is the compiled-code cache, before the runtime
    // may load anything from it.
    crate::datadir::ensure_private(&data_dir)?;
    // One host per data directory, held until this function returns.
    let _lock = crate::dirlock::lock(&data_dir)?;
    crate::datadir::ensure_private(&data_dir.join("cache"))?;
    let checkpoints = data_dir.join("checkpoints");
    std::fs::create_dir_all(&checkpoints)
        .with_context(|| format!("cannot create {}", checkpoints.display()))?;
    // Before anything starts: a non-loopback admin address without a token is refused.
    let admin_token = if config.admin.enabled {
        Some(auth::resolve(&config, &data_dir)?)
    } else {
        None
    };
    // The token keys and certificate too: a file that cannot be used fails the start.
    let authenticator = config.auth.authenticator(&config)?;
    let tls = config.server_tls()?;
    let admin_tls = match config.admin.enabled {
        true => config.admin_tls()?,
        false => None,
    };
    if config.admin.enabled && admin_tls.is_none() && !config.admin.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %config.admin.listen,
            "the admin API listens beyond loopback without [admin.tls]: its bearer token crosses the network in clear"
        );
    }
    if authenticator.is_none() && !config.server.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %config.server.listen,
            "the server listens beyond loopback without [auth]: anyone who can reach it reads every topic"
        );
    }
    // Both listeners before anything starts: a port that is taken fails the start
    // before a pipeline has read a record.
    let listener = bind(&config.origin, "server.listen", config.server.listen).await?;
    let admin_listener = match &admin_token {
        Some(_) => Some(bind(&config.origin, "admin.listen", config.admin.listen).await?),
        None => None,
    };
    let runtime = Runtime::new(config.runtime.runtime_config(Some(data_dir.join("cache"))))?;
    let spec = config.spec();
    let plugins = wasmeter_control::load::load_all(&runtime, &spec).await?;

    let hub = Arc::new(Hub::new(HubConfig {
        history_per_topic: config.server.history_per_topic,
        history_budget: config.server.history_budget,
        history_bytes: config.server.history_bytes,
        max_topics: config.state.max_topics as usize,
        stream_history: config.server.stream_history,
    }));
    let owners = TopicOwners::default();
    // `[broker]`: this host's hub, or Redis shared with other hosts (then the
    // hub follows Redis, and pipelines run only where their lease is held).
    let cluster = match config.broker.kind {
        BrokerType::Memory => None,
        BrokerType::Redis => Some(Cluster::start(
            &config,
            hub.clone(),
            owners.clone(),
            listener.local_addr()?.port(),
        )?),
    };
    let broker: Arc<dyn Broker> = match &cluster {
        Some(c) => Arc::new(c.topics.clone()),
        None => Arc::new(HubBroker(hub.clone())),
    };
    let topics = Topics::new(
        &StateConfig {
            max_topics: config.state.max_topics,
            topic_idle: Duration::from_secs(config.state.topic_idle_secs),
            track_staleness: config.state.field_ttl_ms > 0,
        },
        broker,
    );
    let history = match config.history.enabled {
        true => Some(History::open(&config.history, &data_dir).await?),
        false => None,
    };
    let export = Export::start(&config, &data_dir).await?;
    // Every sample series is also a topic: `/metrics` holds as many as the topics.
    let series = SeriesStore::new(config.state.max_topics);
    let monitor = Monitor::new(series.clone());

    let shared = Shared {
        runtime,
        topics: topics.clone(),
        series,
        monitor: monitor.clone(),
        data_dir: data_dir.clone(),
        plugins_dir,
        owners,
        history: crate::export::sink(history.as_ref().map(History::sender), export.as_ref()),
    };
    let (server_config, admin_config, field_ttl_ms) = (
        config.server.clone(),
        config.admin.clone(),
        config.state.field_ttl_ms,
    );
    let shutdown_timeout = Duration::from_millis(config.runtime.shutdown_timeout_ms);
    let timeouts = Timeouts {
        reply: Duration::from_millis(config.admin.reply_timeout_ms),
        stop: shutdown_timeout,
    };
    let supervisor = Arc::new(match &cluster {
        Some(_) => Supervisor::start_on_standby(shared, spec, plugins, timeouts).await?,
        None => Supervisor::start(shared, spec, plugins, timeouts).await?,
    });

    let background_stop = CancellationToken::new();
    let background = TaskTracker::new();
    if field_ttl_ms > 0 {
        let ttl = Duration::from_millis(field_ttl_ms);
        let (topics, stop) = (topics, background_stop.clone());
        background.spawn(async move {
            let mut every = tokio::time::interval(
                (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)),
            );
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = every.tick() => {}
                }
                // A pass visits every topic (~50 ms at 50,000): on a blocking
                // thread, not a runtime worker. The next tick waits for it.
                let topics = topics.clone();
                let pass = tokio::task::spawn_blocking(move || topics.sweep_stale(ttl));
                if let Err(error) = pass.await {
                    tracing::error!(%error, "stale-field sweep failed");
                }
            }
        });
    }
    let producer = cluster
        .as_ref()
        .map(|c| Arc::new(c.producer((*supervisor).clone())));
    if let Some(producer) = producer.clone() {
        let stop = background_stop.clone();
        background.spawn(async move { producer.run(stop).await });
    }
    if let Some(demo) = options.demo {
        let stop = background_stop.clone();
        background.spawn(async move {
            if let Err(error) = demo.run(stop).await {
                tracing::error!(%error, "demo feed stopped");
            }
        });
    }
    if admin_config.watch_plugins {
        background.spawn(wasmeter_control::hot_reload::watch(
            supervisor.clone(),
            background_stop.clone(),
        ));
    }
    {
        let (supervisor, stop) = (supervisor.clone(), background_stop.clone());
        let certificates = [tls.clone(), admin_tls.clone()]
            .into_iter()
            .flatten()
            .collect();
        background.spawn(reload_on_sighup(
            supervisor,
            options.config_path.clone(),
            certificates,
            stop,
        ));
    }
    let mut admin_addr = None;
    if let (Some((token, token_origin)), Some(listener)) = (admin_token, admin_listener) {
        admin_addr = Some((listener.local_addr()?, token_origin, admin_tls.is_some()));
        let (supervisor, stop) = (supervisor.clone(), background_stop.clone());
        let config_path = options.config_path.clone();
        background.spawn(async move {
            if let Err(error) =
                crate::admin::serve(listener, supervisor, config_path, token, admin_tls, stop).await
            {
                tracing::error!(%error, "admin API stopped");
            }
        });
    }
    background.close();

    let limits = wasmeter_server::ServerConfig {
        allowed_origins: server_config.allowed_origins.clone(),
        ..server_config.limits.clone()
    };
    let guarded_history = authenticator.is_some();
    let state = ServerState::with_auth(hub.clone(), limits, authenticator)?;
    if let Some(c) = &cluster {
        state.set_dependency_check(c.dependency_check());
    }
    let addr = listener.local_addr()?;
    // Handlers first: a signal right after the announcement must shut down cleanly.
    let signals = ShutdownSignals::new()?;
    announce(
        addr,
        tls.is_some(),
        admin_addr.as_ref(),
        &data_dir,
        options.config_path.as_deref(),
    );
    state.set_ready(true);

    let server_stop = CancellationToken::new();
    let server = {
        let (state, server_stop) = (state.clone(), server_stop.clone());
        tokio::spawn(wasmeter_server::serve_tls(
            listener,
            router(state.clone())
                .merge(crate::monitor::router(
                    monitor,
                    state.clone(),
                    crate::monitor::Views {
                        history: history.as_ref().map(History::view),
                        export: export.as_ref().map(Export::view),
                        broker: cluster.as_ref().map(Cluster::view),
                    },
                ))
                .merge(crate::web::router())
                .merge(history_routes(history.as_ref(), guarded_history, &state)),
            state,
            tls,
            async move { server_stop.cancelled().await },
        ))
    };

    tokio::select! {
        _ = signals.recv() => {}
        _ = stop.cancelled() => {}
    }
    tracing::info!("shutting down: stopping sources");
    state.set_ready(false);
    // Changes in progress give up first, so the admin API's requests end.
    supervisor.close();
    background_stop.cancel();
    if tokio::time::timeout(shutdown_timeout, background.wait())
        .await
        .is_err()
    {
        tracing::error!("background tasks (admin API, watcher, demo feed) did not stop in time");
    }
    tracing::info!("draining pipelines");
    supervisor.shutdown().await;
    drop(supervisor);
    if let Some(producer) = producer {
        producer.release_all().await;
    }

    if let Some(history) = history {
        history.close(shutdown_timeout).await;
    }
    if let Some(export) = export {
        export.close(shutdown_timeout).await;
    }
    tracing::info!("closing connections");
    server_stop.cancel();
    server.await.context("server task")??;
    // Last: the pipelines' final changes and checkpoints went through its
    // writer, and the server's /metrics held a view of it.
    if let Some(cluster) = cluster {
        cluster.close(shutdown_timeout).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The metric history's Prometheus API. It spans every topic, so with
/// subscriber tokens it needs one that grants `**`.
fn history_routes(history: Option<&History>, guarded: bool, state: &ServerState) -> axum::Router {
    let Some(history) = history else {
        return axum::Router::new();
    };
    match guarded {
        false => history.router(),
        true => history.router().layer(axum::middleware::from_fn_with_state(
            state.clone(),
            wasmeter_server::require_every_topic,
        )),
    }
}

/// Binds `addr`; the error names the config key.
async fn bind(
    origin: &str,
    key: &str,
    addr: std::net::SocketAddr,
) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("{origin}: {key}: cannot listen on {addr}"))
}

/// Reloads the config file, and the TLS certificates, on every SIGHUP until `stop`.
async fn reload_on_sighup(
    supervisor: Arc<Supervisor>,
    config_path: Option<PathBuf>,
    certificates: Vec<wasmeter_server::Tls>,
    stop: CancellationToken,
) {
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(%error, "cannot handle SIGHUP; reload the config through the admin API");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the config");
                for tls in &certificates {
                    // Off the runtime: it reads files.
                    let tls = tls.clone();
                    match tokio::task::spawn_blocking(move || tls.reload()).await {
                        Ok(Ok(())) => tracing::info!("TLS certificate reloaded"),
                        Ok(Err(error)) => tracing::error!(%error, "TLS certificate not reloaded; the current one stays"),
                        Err(error) => tracing::error!(%error, "TLS reload task failed"),
                    }
                }
                if let Err(error) = crate::reload::reload_config(&supervisor, config_path.clone()).await {
                    tracing::error!(%error, "config reload refused; the running config stays");
                }
            }
        }
    }
}

/// Prints where to look. The first line is stable for scripts and tests, and so
/// is the `admin` line.
fn announce(
    addr: std::net::SocketAddr,
    tls: bool,
    admin: Option<&(std::net::SocketAddr, TokenOrigin, bool)>,
    data_dir: &std::path::Path,
    config_path: Option<&std::path::Path>,
) {
    let (http, ws) = if tls {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    println!("wasmeter: listening on {http}://{addr}");
    println!("  dashboard  {http}://{addr}/");
    println!("  topics     {http}://{addr}/api/topics");
    println!(
        "  websocket  {ws}://{addr}/ws?format=json   (send {{\"type\":\"subscribe\",\"topics\":[\"trades/*\"]}})"
    );
    println!("  sse        {http}://{addr}/sse?topics=trades/*,metrics/trade_vwap/*");
    println!("  health     {http}://{addr}/healthz  {http}://{addr}/readyz");
    println!("  metrics    {http}://{addr}/metrics  {http}://{addr}/api/plugins");
    if let Some((admin, origin, admin_tls)) = admin {
        let scheme = if *admin_tls { "https" } else { "http" };
        let token = match origin {
            TokenOrigin::Env => format!("token from {}", auth::TOKEN_ENV),
            TokenOrigin::Config => "token from admin.token".to_string(),
            TokenOrigin::File(f) | TokenOrigin::Generated(f) => format!("token in {}", f.display()),
        };
        println!(
            "  admin      {scheme}://{admin}   ({token}; `{}`)",
            admin_hint(admin, *admin_tls, origin, config_path)
        );
    }
    println!("  data dir   {}", data_dir.display());
}

/// A `wasmeter plugin list` command that reaches this host as it runs: its
/// config (address and token), its address unless it is the default, and the
/// token file unless the command finds it on its own.
fn admin_hint(
    admin: &std::net::SocketAddr,
    tls: bool,
    origin: &TokenOrigin,
    config_path: Option<&std::path::Path>,
) -> String {
    let mut hint = "wasmeter plugin list".to_string();
    if let Some(config) = config_path {
        hint.push_str(&format!(" --config {}", config.display()));
    }
    // With TLS the scheme must be given unless the config says it (and the
    // certificate to trust comes from the config).
    if *admin != crate::config::AdminSection::default().listen || (tls && config_path.is_none()) {
        let scheme = if tls { "https://" } else { "" };
        hint.push_str(&format!(" --admin {scheme}{admin}"));
    }
    if let TokenOrigin::File(f) | TokenOrigin::Generated(f) = origin
        && config_path.is_none()
        && *f != crate::admin::client::default_token_file()
    {
        hint.push_str(&format!(" --token-file {}", f.display()));
    }
    hint
}

/// SIGINT and SIGTERM, handled from the moment this exists.
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }

    /// Waits for either.
    async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
