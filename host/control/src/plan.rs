//! What a config reload changes: a pure function of the running spec and the
//! new one, so it is tested without a host.

use crate::spec::HostSpec;

/// The difference between two specs, as a reload applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Changed settings that need a restart (not applied).
    pub needs_restart: Vec<String>,
    /// Plugins new in the spec.
    pub plugins_added: Vec<String>,
    /// Plugins gone from the spec.
    pub plugins_removed: Vec<String>,
    /// Plugins whose definition changed (code, config or limits).
    pub plugins_changed: Vec<String>,
    /// Pipelines new in the spec.
    pub pipelines_added: Vec<String>,
    /// Pipelines gone from the spec.
    pub pipelines_removed: Vec<String>,
    /// Pipelines whose definition or sources changed: stopped and started again
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

/// What a reload from `old` (running) to `new` changes.
pub fn plan(old: &HostSpec, new: &HostSpec) -> Plan {
    let mut needs_restart: Vec<String> = old
        .fixed
        .keys()
        .chain(new.fixed.keys())
        .filter(|k| old.fixed.get(*k) != new.fixed.get(*k))
        .cloned()
        .collect();
    needs_restart.sort();
    needs_restart.dedup();
    let mut plan = Plan {
        needs_restart,
        ..Plan::default()
    };
    for (name, def) in &new.plugins {
        match old.plugins.get(name) {
            None => plan.plugins_added.push(name.clone()),
            Some(d) if d != def => plan.plugins_changed.push(name.clone()),
            Some(_) => {}
        }
    }
    plan.plugins_removed = old
        .plugins
        .keys()
        .filter(|n| !new.plugins.contains_key(*n))
        .cloned()
        .collect();
    for (name, def) in &new.pipelines {
        match old.pipelines.get(name) {
            None => plan.pipelines_added.push(name.clone()),
            Some(d) => {
                let sources_changed = def
                    .sources
                    .iter()
                    .any(|src| old.sources.get(src) != new.sources.get(src));
                if d != def || sources_changed {
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use wasmeter_pipeline::PipelineConfig;
    use wasmeter_source::FileSourceConfig;

    use super::*;
    use crate::spec::{LimitOverrides, PipelineDef, PluginCode, PluginDef, SourceDef};

    fn plugin(file: &str) -> PluginDef {
        PluginDef {
            code: PluginCode::File(PathBuf::from(file)),
            config: Vec::new(),
            limits: LimitOverrides::default(),
        }
    }

    fn source(pattern: &str) -> SourceDef {
        SourceDef::File(FileSourceConfig {
            include: vec![pattern.to_string()],
            ..FileSourceConfig::default()
        })
    }

    fn pipeline(name: &str, source: &str, delta: Option<&str>) -> PipelineDef {
        PipelineDef {
            sources: vec![source.to_string()],
            collector: "csv".into(),
            metrics: Vec::new(),
            delta: delta.map(String::from),
            settings: PipelineConfig::new(name),
        }
    }

    /// Plugins csv, delta, rate; sources a, b; pipelines a (csv + delta), b (csv).
    fn base() -> HostSpec {
        HostSpec {
            plugins: [
                ("csv", plugin("/p/csv.wasm")),
                ("delta", plugin("/p/delta.wasm")),
                ("rate", plugin("/p/rate.wasm")),
            ]
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .collect(),
            sources: [("a", source("/d/a/*.csv")), ("b", source("/d/b/*.csv"))]
                .into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect(),
            pipelines: [
                ("a", pipeline("a", "a", Some("delta"))),
                ("b", pipeline("b", "b", None)),
            ]
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .collect(),
            fixed: [("server", "listen = 1"), ("runtime", "")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            origin: "test".into(),
        }
    }

    #[test]
    fn the_same_spec_changes_nothing() {
        assert_eq!(plan(&base(), &base()), Plan::default());
    }

    #[test]
    fn a_changed_plugin_is_a_plugin_change_not_a_pipeline_change() {
        let mut new = base();
        let csv = new.plugins.get_mut("csv").unwrap();
        csv.config.push(("topic_prefix".into(), "deals".into()));
        let p = plan(&base(), &new);
        assert_eq!(p.plugins_changed, ["csv"]);
        assert!(p.pipelines_changed.is_empty() && p.needs_restart.is_empty());
        assert!(p.keeps("a") && p.keeps("b"));

        let mut new = base();
        new.plugins.get_mut("rate").unwrap().limits.max_series = Some(5);
        assert_eq!(plan(&base(), &new).plugins_changed, ["rate"]);
    }

    #[test]
    fn a_changed_source_restarts_only_its_pipeline() {
        let mut new = base();
        new.sources.insert("b".into(), source("/d/c/*.csv"));
        let p = plan(&base(), &new);
        assert_eq!(p.pipelines_changed, ["b"]);
        assert!(p.keeps("a") && !p.keeps("b"));
        assert_eq!(p.pipelines_to_start(), ["b"]);
    }

    #[test]
    fn a_changed_pipeline_setting_restarts_it() {
        let mut new = base();
        new.pipelines.get_mut("a").unwrap().settings.tick = Duration::from_millis(250);
        let p = plan(&base(), &new);
        assert_eq!(p.pipelines_changed, ["a"]);
        assert!(p.plugins_changed.is_empty());
    }

    #[test]
    fn added_and_removed_plugins_and_pipelines_are_told_apart() {
        let mut new = base();
        new.plugins.remove("rate");
        new.plugins.insert("ewma".into(), plugin("/p/ewma.wasm"));
        new.pipelines.remove("b");
        let mut c = pipeline("c", "b", None);
        c.metrics.push("ewma".into());
        new.pipelines.insert("c".into(), c);
        let p = plan(&base(), &new);
        assert_eq!(p.plugins_added, ["ewma"]);
        assert_eq!(p.plugins_removed, ["rate"]);
        assert_eq!(p.pipelines_added, ["c"]);
        assert_eq!(p.pipelines_removed, ["b"]);
        assert!(p.pipelines_changed.is_empty());
        assert_eq!(p.pipelines_to_start(), ["c"]);
    }

    #[test]
    fn changed_fixed_settings_are_reported_added_or_removed() {
        let mut new = base();
        new.fixed.insert("server".into(), "listen = 2".into());
        new.fixed.remove("runtime");
        new.fixed.insert("admin".into(), "enabled = false".into());
        assert_eq!(
            plan(&base(), &new).needs_restart,
            ["admin", "runtime", "server"]
        );
    }
}
