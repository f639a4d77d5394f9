//! From the validated TOML configuration to the control plane's typed
//! [`HostSpec`]: paths resolved against the config file's directory, built-in
//! plugins looked up, plugin config tables flattened, units applied.

use std::time::Duration;

use wasmeter_control::{HostSpec, PipelineDef, PluginCode, PluginDef, SourceDef};
use wasmeter_core::sample::Label;
use wasmeter_pipeline::{PipelineConfig, Shard};
use wasmeter_source::{FileSourceConfig, StartAt};

use crate::config::{Config, PipelineSection, PluginSection, SourceSection, flatten_config};

/// Top-level sections read once at start: a reload that changes them reports
/// them and applies none (see [`HostSpec::fixed`]).
pub const RESTART_ONLY: [&str; 10] = [
    "data_dir", "server", "runtime", "state", "admin", "history", "outputs", "alerts", "auth",
    "broker",
];

impl Config {
    /// What the control plane runs for this config (validated: every reference
    /// resolves, every prefix is valid).
    pub fn spec(&self) -> HostSpec {
        HostSpec {
            plugins: self
                .plugins
                .iter()
                .map(|(name, section)| (name.clone(), self.plugin_def(section)))
                .collect(),
            sources: self
                .sources
                .iter()
                .map(|(name, section)| (name.clone(), self.source_def(name, section)))
                .collect(),
            pipelines: self
                .pipelines
                .iter()
                .flat_map(|(name, section)| pipeline_defs(name, section))
                .collect(),
            fixed: RESTART_ONLY
                .iter()
                .filter_map(|key| Some((key.to_string(), self.raw.get(*key)?.to_string())))
                .collect(),
            origin: self.origin.clone(),
        }
    }

    fn plugin_def(&self, section: &PluginSection) -> PluginDef {
        let code = match (&section.path, &section.builtin) {
            (Some(path), _) => PluginCode::File(self.resolve(path)),
            (None, Some(builtin)) => PluginCode::Builtin {
                name: builtin.clone(),
                bytes: crate::defaults::builtin(builtin).expect("validated").bytes,
            },
            (None, None) => unreachable!("validated"),
        };
        PluginDef {
            code,
            config: flatten_config(&section.config).expect("validated"),
            limits: section.overrides(),
        }
    }

    fn source_def(&self, name: &str, section: &SourceSection) -> SourceDef {
        match section {
            SourceSection::File(f) => SourceDef::File(FileSourceConfig {
                name: name.to_string(),
                include: f.include.iter().map(|p| self.resolve_pattern(p)).collect(),
                exclude: f.exclude.iter().map(|p| self.resolve_pattern(p)).collect(),
                reconcile_interval: Duration::from_millis(f.reconcile_interval_ms),
                max_chunk_bytes: f.max_chunk_bytes,
                max_line_bytes: f.max_line_bytes,
                start_at: if f.start_at == "end" {
                    StartAt::End
                } else {
                    StartAt::Beginning
                },
                ..FileSourceConfig::default()
            }),
            SourceSection::System(s) => SourceDef::System {
                interval: Duration::from_millis(s.interval_ms),
            },
        }
    }
}

/// A pipeline's definition, or one per shard (`<name>#<n>`), each taking
/// an even share of the pipeline's topic quota.
fn pipeline_defs(name: &str, section: &PipelineSection) -> Vec<(String, PipelineDef)> {
    let def = pipeline_def(name, section);
    let Some(key) = section.shard_key.as_ref().filter(|_| section.shards > 1) else {
        return vec![(name.to_string(), def)];
    };
    let key = key.key().expect("validated");
    let count = section.shards;
    (0..count)
        .map(|index| {
            let shard_name = Shard::pipeline_name(name, index);
            let mut def = def.clone();
            def.settings.name = shard_name.clone();
            def.settings.max_topics = section.max_topics.div_ceil(count as usize);
            def.settings.shard = Some(Shard {
                group: name.to_string(),
                index,
                count,
                key: key.clone(),
            });
            (shard_name, def)
        })
        .collect()
}

fn pipeline_def(name: &str, section: &PipelineSection) -> PipelineDef {
    PipelineDef {
        sources: section.sources.clone(),
        collector: section.collector.clone(),
        metrics: section.metrics.clone(),
        delta: section.delta.clone(),
        settings: PipelineConfig {
            name: name.to_string(),
            tick: Duration::from_millis(section.tick_ms),
            checkpoint: None,
            checkpoint_interval: Duration::from_millis(section.checkpoint_interval_ms),
            checkpoint_bytes_per_sec: section.checkpoint_bytes_per_sec,
            topics: section.owned_prefixes(name).expect("validated"),
            max_topics: section.max_topics,
            labels: section
                .labels
                .iter()
                .map(|(name, value)| Label::new(name, value))
                .collect(),
            durable_history: section.durable_history,
            durable_stream_history: section.durable_stream_history,
            shard: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use wasmeter_control::plan;

    use super::*;

    const BASE: &str = r#"
        [plugins.csv]
        builtin = "csv-collector"
        config = { field = { price = "p" } }
        [plugins.rate]
        path = "plugins/rate.wasm"
        max_series = 50

        [sources.a]
        type = "file"
        include = ["a/*.csv"]

        [pipelines.a]
        sources = ["a"]
        collector = "csv"
        metrics = ["rate"]
        topics = ["trades/"]
        labels = { feed = "x" }
    "#;

    fn spec(text: &str) -> HostSpec {
        Config::parse(text, "test.toml", Path::new("/etc/wasmeter"))
            .unwrap()
            .spec()
    }

    #[test]
    fn paths_resolve_config_flattens_and_limits_stay_overrides() {
        let s = spec(BASE);
        assert_eq!(
            s.plugins["rate"].code,
            PluginCode::File("/etc/wasmeter/plugins/rate.wasm".into())
        );
        assert_eq!(s.plugins["rate"].limits.max_series, Some(50));
        assert_eq!(s.plugins["rate"].limits.max_topics, None);
        assert_eq!(
            s.plugins["csv"].config,
            [("field.price".to_string(), "p".to_string())]
        );
        let SourceDef::File(a) = &s.sources["a"] else {
            panic!("a file source")
        };
        assert_eq!(a.include, ["/etc/wasmeter/a/*.csv"]);
        let p = &s.pipelines["a"];
        assert_eq!(p.settings.topics, ["trades"]);
        assert_eq!(p.settings.labels, [Label::new("feed", "x")]);
        assert_eq!(s.origin, "test.toml");
    }

    #[test]
    fn restart_only_sections_are_fixed_settings() {
        let text = format!("[server]\nhistory_per_topic = 7\n{BASE}");
        let p = plan(&spec(BASE), &spec(&text));
        assert_eq!(p.needs_restart, ["server"]);
        assert!(p.plugins_changed.is_empty() && p.pipelines_changed.is_empty());
    }

    #[test]
    fn a_changed_runtime_section_does_not_change_plugins() {
        // Limits stay overrides: the runtime's own limits are fixed at start.
        let text = format!("[runtime]\nmax_series_per_plugin = 3\n{BASE}");
        let p = plan(&spec(BASE), &spec(&text));
        assert_eq!(p.needs_restart, ["runtime"]);
        assert!(p.plugins_changed.is_empty());
    }
}
