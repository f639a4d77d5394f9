//! What readers see of the supervisor without waiting for a change: a copy of
//! the registry replaced after every change, the change in progress, and the
//! pipelines that have not answered a command.
//!
//! Every lock here is a `std` lock held only to copy or replace a value, never
//! across an await, so `list`, `inspect` and `/v1/plugins` answer while a change
//! waits for a stuck pipeline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::registry::PluginEntry;

/// The control plane's activity, as `GET /v1/plugins` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ControlStatus {
    /// The change in progress, if any.
    pub change: Option<ChangeStatus>,
    /// Pipelines that did not answer a command in time; no change touches them
    /// until they answer.
    pub unanswered: Vec<UnansweredStatus>,
}

/// A change in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeStatus {
    /// `swap`, `reload`, `rollback`, `load`, `unload`, `reload-config`, ...
    pub op: String,
    /// The plugin it changes (empty for a config reload).
    pub plugin: String,
    /// Milliseconds since it started.
    pub running_ms: u64,
    /// The pipeline whose answer it waits for now, if any.
    pub waiting_for: Option<String>,
}

/// A pipeline that did not answer a command in time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnansweredStatus {
    /// The pipeline.
    pub pipeline: String,
    /// The command, e.g. "swap of `csv`".
    pub command: String,
    /// Milliseconds since it was sent.
    pub waiting_ms: u64,
}

/// A change in progress (internal form).
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    pub op: String,
    pub plugin: String,
    pub started: Instant,
    pub waiting_for: Option<String>,
}

impl Activity {
    pub fn new(op: &str, plugin: &str) -> Self {
        Self {
            op: op.to_string(),
            plugin: plugin.to_string(),
            started: Instant::now(),
            waiting_for: None,
        }
    }

    /// "swap of `csv` (running for 1.2 s)", for messages.
    pub fn describe(&self) -> String {
        let what = if self.plugin.is_empty() {
            self.op.clone()
        } else {
            format!("{} of `{}`", self.op, self.plugin)
        };
        format!(
            "{what} (running for {:.1} s)",
            self.started.elapsed().as_secs_f64()
        )
    }
}

/// A command a pipeline has not answered (internal form).
#[derive(Debug, Clone)]
pub(crate) struct Unanswered {
    /// The pipeline's id (a restarted pipeline of the same name is another one).
    pub id: u64,
    pub command: String,
    pub sent: Instant,
}

/// The readers' side of the supervisor.
#[derive(Default)]
pub(crate) struct View {
    plugins: RwLock<Arc<BTreeMap<String, PluginEntry>>>,
    activity: Mutex<Option<Activity>>,
    unanswered: Mutex<BTreeMap<String, Unanswered>>,
    /// Whether each plugin's last announcement said it is quarantined.
    quarantine_announced: Mutex<BTreeMap<String, bool>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl View {
    /// The registry as of the last change.
    pub fn plugins(&self) -> Arc<BTreeMap<String, PluginEntry>> {
        self.plugins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Publishes the registry after a change.
    pub fn set_plugins(&self, plugins: &BTreeMap<String, PluginEntry>) {
        let copy = Arc::new(plugins.clone());
        *self.plugins.write().unwrap_or_else(|p| p.into_inner()) = copy;
    }

    pub fn set_activity(&self, activity: Option<Activity>) {
        *lock(&self.activity) = activity;
    }

    /// The change in progress, for a refusal's message.
    pub fn activity(&self) -> Option<Activity> {
        lock(&self.activity).clone()
    }

    pub fn set_waiting_for(&self, pipeline: Option<&str>) {
        if let Some(a) = lock(&self.activity).as_mut() {
            a.waiting_for = pipeline.map(String::from);
        }
    }

    /// Records that `pipeline` has not answered `command`.
    pub fn add_unanswered(&self, pipeline: &str, entry: Unanswered) {
        lock(&self.unanswered).insert(pipeline.to_string(), entry);
    }

    /// The unanswered command of this pipeline (this id), if any.
    pub fn unanswered(&self, pipeline: &str, id: u64) -> Option<Unanswered> {
        lock(&self.unanswered)
            .get(pipeline)
            .filter(|u| u.id == id)
            .cloned()
    }

    /// Forgets the unanswered command of this pipeline (this id).
    pub fn clear_unanswered(&self, pipeline: &str, id: u64) {
        let mut map = lock(&self.unanswered);
        if map.get(pipeline).is_some_and(|u| u.id == id) {
            map.remove(pipeline);
        }
    }

    /// Records that `plugin` is announced (un)quarantined; false if that is what
    /// was announced last (a plugin never announced counts as not quarantined).
    pub fn announce_quarantine(&self, plugin: &str, quarantined: bool) -> bool {
        let mut map = lock(&self.quarantine_announced);
        let before = map.insert(plugin.to_string(), quarantined).unwrap_or(false);
        before != quarantined
    }

    /// What `GET /v1/plugins` shows.
    pub fn status(&self) -> ControlStatus {
        let ms = |at: Instant| at.elapsed().as_millis() as u64;
        ControlStatus {
            change: lock(&self.activity).as_ref().map(|a| ChangeStatus {
                op: a.op.clone(),
                plugin: a.plugin.clone(),
                running_ms: ms(a.started),
                waiting_for: a.waiting_for.clone(),
            }),
            unanswered: lock(&self.unanswered)
                .iter()
                .map(|(pipeline, u)| UnansweredStatus {
                    pipeline: pipeline.clone(),
                    command: u.command.clone(),
                    waiting_ms: ms(u.sent),
                })
                .collect(),
        }
    }
}
