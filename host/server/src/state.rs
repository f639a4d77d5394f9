//! State shared by every route: the hub, limits, readiness, counters, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;
use wasmeter_hub::Hub;

use crate::auth::Authenticator;
use crate::config::{ConfigError, ServerConfig};
use crate::metrics::{Event, Metrics, MetricsSnapshot};

/// Everything the routes share; cheap to clone.
#[derive(Debug, Clone)]
pub struct ServerState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) hub: Arc<Hub>,
    pub(crate) config: ServerConfig,
    /// Set by the embedding code once the host is ready; `/readyz` reports it.
    pub(crate) ready: Arc<AtomicBool>,
    pub(crate) metrics: Arc<Metrics>,
    /// Cancelled at shutdown: every connection closes (WebSocket: 1001).
    pub(crate) shutdown: CancellationToken,
    /// Counts every connection from acceptance to its last byte; shutdown waits
    /// for it to drain.
    pub(crate) tracker: TaskTracker,
    /// Open connections (the limit's counter).
    pub(crate) open: AtomicUsize,
    /// Open plain HTTP connections (the counter of `max_http_connections`).
    pub(crate) open_http: AtomicUsize,
    /// Verifies subscriber tokens; `None`: no authentication, every topic is open.
    pub(crate) auth: Option<Arc<Authenticator>>,
    /// What else `/readyz` depends on (a broker shared by hosts).
    pub(crate) dependency: std::sync::RwLock<Option<DependencyCheck>>,
}

/// Says why a service the host depends on is not usable now (`Err`), for `/readyz`.
#[derive(Clone)]
pub struct DependencyCheck(pub Arc<dyn Fn() -> Result<(), String> + Send + Sync>);

impl std::fmt::Debug for DependencyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DependencyCheck")
    }
}

impl ServerState {
    /// State for a server over `hub`; fails if the configuration is inconsistent.
    pub fn new(hub: Arc<Hub>, config: ServerConfig) -> Result<Self, ConfigError> {
        Self::with_auth(hub, config, None)
    }

    /// State for a server whose subscribers need tokens verified by `auth`
    /// (`None`: no authentication).
    pub fn with_auth(
        hub: Arc<Hub>,
        config: ServerConfig,
        auth: Option<Authenticator>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                hub,
                config,
                ready: Arc::new(AtomicBool::new(false)),
                metrics: Arc::new(Metrics::default()),
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                open: AtomicUsize::new(0),
                open_http: AtomicUsize::new(0),
                auth: auth.map(Arc::new),
                dependency: std::sync::RwLock::new(None),
            }),
        })
    }

    /// The hub the server subscribes clients to.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The token verifier, when subscribers must authenticate.
    pub fn authenticator(&self) -> Option<&Arc<Authenticator>> {
        self.inner.auth.as_ref()
    }

    /// The readiness flag behind `/readyz` (false until set).
    pub fn ready_flag(&self) -> Arc<AtomicBool> {
        self.inner.ready.clone()
    }

    /// Sets readiness.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    /// Makes `/readyz` answer 503 with the reason while `check` fails (e.g.
    /// the broker several hosts share cannot be reached).
    pub fn set_dependency_check(&self, check: DependencyCheck) {
        *self
            .inner
            .dependency
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(check);
    }

    /// The counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot(self.inner.tracker.len())
    }

    /// Cancelling this token closes every connection (WebSocket with 1001) and
    /// makes [`serve`](crate::serve) return once they are gone.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }
}

/// A place under the connection limit, held for a connection's lifetime; it also
/// keeps the connection counted by the shutdown tracker.
#[derive(Debug)]
pub(crate) struct Permit {
    state: ServerState,
    _tracked: TaskTrackerToken,
}

impl Permit {
    /// A permit, or the HTTP 503 to answer when `max_connections` are open.
    #[allow(
        clippy::result_large_err,
        reason = "the refusal is returned to axum as is"
    )]
    pub(crate) fn acquire(state: &ServerState) -> Result<Self, axum::response::Response> {
        let inner = &state.inner;
        let max = inner.config.max_connections;
        let taken = inner
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            inner.metrics.record(Event::Refused);
            return Err(crate::rest::json_error(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "too_many_connections",
                format!("the server already holds its limit of {max} connections"),
            ));
        }
        inner.metrics.record(Event::Opened);
        Ok(Self {
            state: state.clone(),
            _tracked: inner.tracker.token(),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let inner = &self.state.inner;
        inner.open.fetch_sub(1, Ordering::AcqRel);
        inner.metrics.record(Event::Closed);
    }
}

/// A place under `max_http_connections`, taken when a TCP connection is accepted.
/// The serving loop releases it when the connection ends or is upgraded to a
/// WebSocket; an SSE stream releases it when it becomes a subscriber (it then
/// counts against `max_connections`). Every request of the connection carries a
/// clone in its extensions. Releasing twice is harmless.
#[derive(Debug, Clone)]
pub(crate) struct HttpSlot(Arc<HttpSlotInner>);

#[derive(Debug)]
struct HttpSlotInner {
    state: ServerState,
    released: AtomicBool,
}

impl HttpSlot {
    /// A slot, or `None` (counted as refused) when the limit is reached.
    pub(crate) fn acquire(state: &ServerState) -> Option<Self> {
        let inner = &state.inner;
        let max = inner.config.max_http_connections;
        let taken = inner
            .open_http
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            inner.metrics.record(Event::HttpRefused);
            return None;
        }
        inner.metrics.record(Event::HttpOpened);
        Some(Self(Arc::new(HttpSlotInner {
            state: state.clone(),
            released: AtomicBool::new(false),
        })))
    }

    /// Gives the place back (once; later calls do nothing).
    pub(crate) fn release(&self) {
        if !self.0.released.swap(true, Ordering::AcqRel) {
            let inner = &self.0.state.inner;
            inner.open_http.fetch_sub(1, Ordering::AcqRel);
            inner.metrics.record(Event::HttpClosed);
        }
    }
}

impl Drop for HttpSlotInner {
    fn drop(&mut self) {
        if !*self.released.get_mut() {
            let inner = &self.state.inner;
            inner.open_http.fetch_sub(1, Ordering::AcqRel);
            inner.metrics.record(Event::HttpClosed);
        }
    }
}
