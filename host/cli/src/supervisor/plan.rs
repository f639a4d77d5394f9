//! What a config reload changes: a pure function of the running config and the
//! new one, so it can be tested without a host.

use crate::config::Config;

/// Top-level keys whose changes need a restart.
pub const RESTART_ONLY: [&str; 5] = ["data_dir", "server", "runtime", "state", "admin"];

/// The difference between two configs, as a reload applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Changed top-level sections that need a restart (not applied).
    pub needs_restart: Vec<String>,
    /// Plugins new in the file.
    pub plugins_added: Vec<String>,
    /// Plugins gone from the file.
    pub plugins_removed: Vec<String>,
    /// Plugins whose section changed (a new version, config or limits).
    pub plugins_changed: Vec<String>,
    /// Pipelines new in the file.
    pub pipelines_added: Vec<String>,
    /// Pipelines gone from the file.
    pub pipelines_removed: Vec<String>,
    /// Pipelines whose section or sources changed: stopped and started again
    /// from their checkpoint.
    pub pipelines_changed: Vec<String>,
}

impl Plan {
    /// Pipelines to start from prepared instances: new and changed ones.
    pub fn pipelines_to_start(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .pipelines_added
            .iter()
            .chain(&self.pipelines_changed)
            .cloned()
            .collect();
        all.sort();
        all
    }

    /// Whether the pipeline `name` keeps running untouched.
    pub fn keeps(&self, name: &str) -> bool {
        !self.pipelines_removed.iter().any(|p| p == name)
            && !self.pipelines_changed.iter().any(|p| p == name)
    }
}

/// What a reload from `old` (running) to `new` (the file) changes.
pub fn plan(old: &Config, new: &Config) -> Plan {
    let mut plan = Plan {
        needs_restart: RESTART_ONLY
            .iter()
            .filter(|k| old.raw.get(**k) != new.raw.get(**k))
            .map(|k| k.to_string())
            .collect(),
        ..Plan::default()
    };
    for (name, section) in &new.plugins {
        match old.plugins.get(name) {
            None => plan.plugins_added.push(name.clone()),
            Some(s) if s != section => plan.plugins_changed.push(name.clone()),
            Some(_) => {}
        }
    }
    plan.plugins_removed = old
        .plugins
        .keys()
        .filter(|n| !new.plugins.contains_key(*n))
        .cloned()
        .collect();
    for (name, section) in &new.pipelines {
        match old.pipelines.get(name) {
            None => plan.pipelines_added.push(name.clone()),
            Some(s) => {
                let sources_changed = section
                    .sources
                    .iter()
                    .any(|src| old.sources.get(src) != new.sources.get(src));
                if s != section || sources_changed {
                    plan.pipelines_changed.push(name.clone());
                }
            }
        }
    }
    plan.pipelines_removed = old
        .pipelines
        .keys()
        .filter(|n| !new.pipelines.contains_key(*n))
        .cloned()
        .collect();
    plan
}

/// Keeps the running values of the sections that need a restart (and their
/// text, so the next reload still sees the pending change).
pub fn pin_restart_only(old: &Config, new: &mut Config) {
    for key in RESTART_ONLY {
        match old.raw.get(key) {
            Some(v) => new.raw.insert(key.to_string(), v.clone()),
            None => new.raw.remove(key),
        };
    }
    new.data_dir = old.data_dir.clone();
    new.server = old.server.clone();
    new.runtime = old.runtime.clone();
    new.state = old.state.clone();
    new.admin = old.admin.clone();
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const BASE: &str = r#"
        [plugins.csv]
        builtin = "csv-collector"
        [plugins.delta]
        builtin = "field-delta"
        [plugins.rate]
        builtin = "counter-rate"

        [sources.a]
        type = "file"
        include = ["a/*.csv"]
        [sources.b]
        type = "file"
        include = ["b/*.csv"]

        [pipelines.a]
        sources = ["a"]
        collector = "csv"
        delta = "delta"
        [pipelines.b]
        sources = ["b"]
        collector = "csv"
    "#;

    fn config(text: &str) -> Config {
        Config::parse(text, "test.toml", Path::new("/etc/wasmeter")).unwrap()
    }

    #[test]
    fn the_same_config_changes_nothing() {
        assert_eq!(plan(&config(BASE), &config(BASE)), Plan::default());
    }

    #[test]
    fn a_changed_plugin_section_is_a_plugin_change_not_a_pipeline_change() {
        let new = BASE.replace(
            "builtin = \"csv-collector\"",
            "builtin = \"csv-collector\"\nconfig = { topic_prefix = \"deals\" }",
        );
        let p = plan(&config(BASE), &config(&new));
        assert_eq!(p.plugins_changed, ["csv"]);
        assert!(p.pipelines_changed.is_empty() && p.needs_restart.is_empty());
        assert!(p.keeps("a") && p.keeps("b"));
    }

    #[test]
    fn a_changed_source_restarts_only_its_pipeline() {
        let new = BASE.replace("include = [\"b/*.csv\"]", "include = [\"c/*.csv\"]");
        let p = plan(&config(BASE), &config(&new));
        assert_eq!(p.pipelines_changed, ["b"]);
        assert!(p.keeps("a") && !p.keeps("b"));
        assert_eq!(p.pipelines_to_start(), ["b"]);
    }

    #[test]
    fn added_and_removed_plugins_and_pipelines_are_told_apart() {
        let new = BASE
            .replace("[plugins.rate]\n        builtin = \"counter-rate\"", "")
            .replace(
                "[pipelines.b]\n        sources = [\"b\"]\n        collector = \"csv\"",
                "[plugins.ewma]\nbuiltin = \"ewma\"\n[pipelines.c]\nsources = [\"b\"]\ncollector = \"csv\"\nmetrics = [\"ewma\"]",
            );
        let p = plan(&config(BASE), &config(&new));
        assert_eq!(p.plugins_added, ["ewma"]);
        assert_eq!(p.plugins_removed, ["rate"]);
        assert_eq!(p.pipelines_added, ["c"]);
        assert_eq!(p.pipelines_removed, ["b"]);
        assert!(p.pipelines_changed.is_empty());
        assert_eq!(p.pipelines_to_start(), ["c"]);
    }

    #[test]
    fn restart_only_sections_are_reported_and_pinned() {
        let old = config(BASE);
        let text =
            format!("[server]\nhistory_per_topic = 7\n[runtime]\nshutdown_timeout_ms = 5\n{BASE}");
        let mut new = config(&text);
        let p = plan(&old, &new);
        assert_eq!(p.needs_restart, ["server", "runtime"]);
        pin_restart_only(&old, &mut new);
        assert_eq!(new.server.history_per_topic, old.server.history_per_topic);
        assert_eq!(
            new.runtime.shutdown_timeout_ms,
            old.runtime.shutdown_timeout_ms
        );
        // Recorded pinned, the file's change stays pending for the next reload.
        assert_eq!(
            plan(&new, &config(&text)).needs_restart,
            ["server", "runtime"]
        );
    }
}
