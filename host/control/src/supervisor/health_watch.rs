//! Announces on `_wasmeter/plugins/<name>` what happens to a plugin without a
//! change: a quarantine by its own failures or a quota, and its release. A plugin
//! counts as quarantined while any of its instances is; each automatic
//! transition is announced once, within [`POLL`]. An admin's `quarantine` and
//! `release` are announced at once, always.

use std::collections::HashMap;
use std::time::Duration;

use super::Supervisor;
use crate::registry::PluginEntry;

/// How often the instances' health is looked at.
pub(super) const POLL: Duration = Duration::from_millis(500);

impl Supervisor {
    /// Watches the instances' health until the supervisor closes (a task it owns).
    pub(super) fn watch_health(&self) {
        let this = self.clone();
        self.tasks.spawn(async move {
            let mut every = tokio::time::interval(POLL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = this.closing.cancelled() => return,
                    _ = every.tick() => {}
                }
                this.announce_health();
            }
        });
    }

    /// Announces the plugins whose quarantine changed since the last announcement.
    fn announce_health(&self) {
        let plugins = self.view.plugins();
        let mut now: HashMap<String, (bool, Option<String>)> = HashMap::new();
        for (_, r) in self.shared.monitor.plugin_instances() {
            let state = now.entry(r.name.clone()).or_insert((false, None));
            if r.health.quarantined() {
                *state = (true, r.health.snapshot().last_error);
            }
        }
        for (name, (quarantined, error)) in now {
            if let Some(entry) = plugins.get(&name) {
                self.announce_quarantine(entry, quarantined, error.as_deref(), false);
            }
        }
    }

    /// Publishes `quarantined` or `released` for `entry`: `always` (an admin's
    /// action), or else unless that is what was announced last.
    pub(super) fn announce_quarantine(
        &self,
        entry: &PluginEntry,
        quarantined: bool,
        error: Option<&str>,
        always: bool,
    ) {
        if self.view.announce_quarantine(&entry.name, quarantined) || always {
            let event = if quarantined {
                "quarantined"
            } else {
                "released"
            };
            if quarantined {
                tracing::warn!(plugin = %entry.name, error = error.unwrap_or(""), "plugin quarantined");
            }
            self.notice(entry, event, error);
        }
    }
}
