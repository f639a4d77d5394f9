//! What each plugin of a pipeline has created, checked against ownership and
//! quotas before anything is published: a plugin can write only topics its
//! pipeline owns, create at most its quota of topics and series, and a pipeline
//! at most its quota of topics in all. What a plugin created is removed with it.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use wasmeter_core::validate::OutputError;

use crate::owners::{TopicOwners, owned_by};

/// Why an item of a plugin's output was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A topic outside the pipeline's prefixes.
    NotOwned {
        /// The topic.
        topic: Arc<str>,
        /// The pipeline.
        pipeline: Arc<str>,
        /// What it owns.
        prefixes: Vec<String>,
    },
    /// A series another pipeline publishes.
    SeriesTaken {
        /// The series topic.
        topic: Arc<str>,
        /// The pipeline that has it.
        owner: Arc<str>,
    },
    /// The plugin's quota of topics or series is used up.
    PluginQuota {
        /// "topics" or "series".
        what: &'static str,
        /// The quota.
        limit: usize,
    },
    /// A stream topic written as state, or a state topic written as events.
    KindConflict {
        /// The topic.
        topic: Arc<str>,
        /// What it is.
        is: TopicKind,
    },
    /// The pipeline's quota of topics is used up.
    PipelineQuota {
        /// The pipeline.
        pipeline: Arc<str>,
        /// The quota.
        limit: usize,
    },
}

impl Refusal {
    /// Whether the plugin is quarantined for it (a quota), rather than only
    /// charged with a failed call (a topic it may not write).
    pub fn quarantines(&self) -> bool {
        matches!(self, Self::PluginQuota { .. } | Self::PipelineQuota { .. })
    }

    /// As output the host refused, naming the item.
    pub fn to_output_error(&self, item: &str) -> OutputError {
        let problem = match self {
            Self::NotOwned {
                pipeline, prefixes, ..
            } => format!(
                "pipeline `{pipeline}` owns only {}; declare the prefix in `pipelines.{pipeline}.topics`",
                prefixes
                    .iter()
                    .map(|p| format!("`{p}/`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::SeriesTaken { owner, .. } => {
                format!("the series is published by pipeline `{owner}`")
            }
            Self::PluginQuota { what, limit } => {
                format!("the plugin's quota of {limit} {what} is used up")
            }
            Self::PipelineQuota { pipeline, limit } => {
                format!("pipeline `{pipeline}`'s quota of {limit} topics is used up")
            }
            Self::KindConflict { topic, is } => match is {
                TopicKind::Stream => format!(
                    "`{topic}` is a stream topic (written with events): it takes no topic updates"
                ),
                _ => format!(
                    "`{topic}` is a state topic (written with topic updates): it takes no events"
                ),
            },
        };
        OutputError {
            item: item.to_string(),
            problem,
        }
    }
}

/// The most series numbers remembered per plugin: what one instance declares at
/// most without a reset.
const MAX_DECLARED: usize = 65_536;

/// Whether a topic is a plain topic (from a topic update), a stream topic (from
/// events) or a sample series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// Written by topic updates; must lie under the pipeline's prefixes.
    Topic,
    /// Written by events (contract 0.2.0); under the pipeline's prefixes too, and
    /// counted with its topics.
    Stream,
    /// A sample series (`metrics/...`); claimed by the first pipeline to publish it.
    Series,
}

impl Counts {
    /// The count `kind` is charged to: streams count as topics.
    fn of(&mut self, kind: TopicKind) -> &mut usize {
        match kind {
            TopicKind::Topic | TopicKind::Stream => &mut self.topics,
            TopicKind::Series => &mut self.series,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    topics: usize,
    series: usize,
}

/// A pipeline's topics, by the plugin instance that created each.
#[derive(Debug)]
pub struct Footprints {
    pipeline: Arc<str>,
    prefixes: Vec<String>,
    max_topics: usize,
    owners: TopicOwners,
    creator: HashMap<Arc<str>, (Arc<str>, TopicKind)>,
    counts: HashMap<Arc<str>, Counts>,
    /// Series admitted before, per plugin, by the number the plugin's instance
    /// declared them with: a series seen again is admitted without a look-up
    /// among all the pipeline's topics (one cache miss or two instead of three or
    /// four at tens of thousands of topics).
    declared: HashMap<Arc<str>, DeclaredMemo>,
    /// Counts removals: a remembered admission older than the last one is
    /// checked again.
    generation: u64,
}

/// The admitted series of one plugin instance's numbering (at most
/// 65,536 of them: the most an instance declares without a reset).
#[derive(Debug, Default)]
struct DeclaredMemo {
    table: u64,
    /// The series' topic and the generation it was admitted in, by number.
    slots: Vec<Option<(Arc<str>, u64)>>,
}

impl Footprints {
    /// Empty: `prefixes` (normalised) are what the pipeline owns, `max_topics` its quota.
    pub fn new(
        pipeline: &str,
        prefixes: Vec<String>,
        max_topics: usize,
        owners: TopicOwners,
    ) -> Self {
        Self {
            pipeline: pipeline.into(),
            prefixes,
            max_topics,
            owners,
            creator: HashMap::new(),
            counts: HashMap::new(),
            declared: HashMap::new(),
            generation: 0,
        }
    }

    /// Topics the pipeline has created and not removed.
    pub fn len(&self) -> usize {
        self.creator.len()
    }

    /// True before the pipeline has created a topic.
    pub fn is_empty(&self) -> bool {
        self.creator.is_empty()
    }

    /// Admits `topic`, written by `plugin` (whose quota is `plugin_limit` of this
    /// kind): the shared name to publish it under, or why it is refused. A topic
    /// the pipeline already has costs one map look-up.
    pub fn admit(
        &mut self,
        plugin: &str,
        plugin_limit: usize,
        topic: &str,
        kind: TopicKind,
    ) -> Result<Arc<str>, Refusal> {
        if let Some((name, (_, is))) = self.creator.get_key_value(topic) {
            if *is != kind && kind != TopicKind::Series {
                return Err(Refusal::KindConflict {
                    topic: name.clone(),
                    is: *is,
                });
            }
            return Ok(name.clone());
        }
        let topic: Arc<str> = topic.into();
        match kind {
            TopicKind::Topic | TopicKind::Stream if !owned_by(&self.prefixes, &topic) => {
                return Err(Refusal::NotOwned {
                    topic,
                    pipeline: self.pipeline.clone(),
                    prefixes: self.prefixes.clone(),
                });
            }
            _ => {}
        }
        if self.creator.len() >= self.max_topics {
            return Err(Refusal::PipelineQuota {
                pipeline: self.pipeline.clone(),
                limit: self.max_topics,
            });
        }
        let mut counts = self.counts.get(plugin).copied().unwrap_or_default();
        let used = *counts.of(kind);
        let what = match kind {
            TopicKind::Topic | TopicKind::Stream => "topics",
            TopicKind::Series => "series",
        };
        if used >= plugin_limit {
            return Err(Refusal::PluginQuota {
                what,
                limit: plugin_limit,
            });
        }
        if kind == TopicKind::Series
            && let Some(owner) = self.owners.claim_series(&self.pipeline, &topic)
        {
            return Err(Refusal::SeriesTaken { topic, owner });
        }
        let plugin: Arc<str> = match self.counts.get_key_value(plugin) {
            Some((name, _)) => name.clone(),
            None => plugin.into(),
        };
        *self.counts.entry(plugin.clone()).or_default().of(kind) += 1;
        self.creator.insert(topic.clone(), (plugin, kind));
        Ok(topic)
    }

    /// [`Self::admit`] of a series that `plugin`'s numbering `table` declared as
    /// `number` (see `SampleBatch::declared_series_number`), whose topic name
    /// `topic` gives: once admitted, the same series is admitted again from
    /// memory, its name not asked for, until a topic of the pipeline is removed.
    pub fn admit_declared<'t>(
        &mut self,
        plugin: &str,
        plugin_limit: usize,
        (table, number): (u64, u32),
        topic: impl FnOnce() -> &'t str,
    ) -> Result<Arc<str>, Refusal> {
        let generation = self.generation;
        if let Some(memo) = self.declared.get(plugin)
            && memo.table == table
            && let Some(Some((topic, admitted))) = memo.slots.get(number as usize)
            && *admitted == generation
        {
            return Ok(topic.clone());
        }
        let admitted = self.admit(plugin, plugin_limit, topic(), TopicKind::Series)?;
        let memo = match self.declared.get_mut(plugin) {
            Some(memo) => memo,
            None => self.declared.entry(plugin.into()).or_default(),
        };
        if memo.table != table {
            memo.table = table;
            memo.slots.clear();
        }
        let at = number as usize;
        if at < MAX_DECLARED {
            if memo.slots.len() <= at {
                memo.slots.resize(at + 1, None);
            }
            memo.slots[at] = Some((admitted.clone(), generation));
        }
        Ok(admitted)
    }

    /// Every topic the pipeline created, with its creator and kind.
    pub fn topics(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<str>, TopicKind)> {
        self.creator.iter().map(|(t, (c, k))| (t, c, *k))
    }

    /// Takes back a topic `plugin` created before a restart (from the checkpoint);
    /// a series is claimed again (ignored if another pipeline has it now).
    pub fn restore(&mut self, plugin: &str, topic: &Arc<str>, kind: TopicKind) {
        if self.creator.contains_key(topic) {
            return;
        }
        if kind == TopicKind::Series && self.owners.claim_series(&self.pipeline, topic).is_some() {
            return;
        }
        let plugin: Arc<str> = match self.counts.get_key_value(plugin) {
            Some((name, _)) => name.clone(),
            None => plugin.into(),
        };
        *self.counts.entry(plugin.clone()).or_default().of(kind) += 1;
        self.creator.insert(topic.clone(), (plugin, kind));
    }

    /// Forgets the topics `plugin` created that `keep` rejects, and returns them
    /// (to remove from the topic state); their series claims are released.
    pub fn forget(
        &mut self,
        plugin: &str,
        keep: impl Fn(&str, TopicKind) -> bool,
    ) -> Vec<Arc<str>> {
        self.declared.remove(plugin);
        let mut gone = Vec::new();
        self.creator.retain(|topic, (creator, kind)| {
            let drop = &**creator == plugin && !keep(topic, *kind);
            if drop {
                gone.push((topic.clone(), *kind));
            }
            !drop
        });
        if !gone.is_empty() {
            self.generation += 1;
        }
        if let Some(counts) = self.counts.get_mut(plugin) {
            for (_, kind) in &gone {
                *counts.of(*kind) -= 1;
            }
        }
        let series = gone.iter().filter(|(_, k)| *k == TopicKind::Series);
        self.owners
            .release_series(&self.pipeline, series.map(|(t, _)| t));
        gone.into_iter().map(|(t, _)| t).collect()
    }

    /// Forgets every topic `gone` says was removed elsewhere (expired, evicted), so
    /// they count no more; returns how many.
    pub fn forget_where(&mut self, gone: impl Fn(&str) -> bool) -> usize {
        let topics: Vec<Arc<str>> = self.creator.keys().filter(|t| gone(t)).cloned().collect();
        for topic in &topics {
            self.removed(topic);
        }
        topics.len()
    }

    /// Forgets a topic removed elsewhere (expired, evicted), so it counts no more.
    pub fn removed(&mut self, topic: &str) {
        if let Some((topic, (plugin, kind))) = self.creator.remove_entry(topic) {
            self.generation += 1;
            if let Some(counts) = self.counts.get_mut(&plugin) {
                *counts.of(kind) -= 1;
            }
            if kind == TopicKind::Series {
                self.owners.release_series(&self.pipeline, [&topic]);
            }
        }
    }
}

/// True if `name` matches one of a plugin's `emits` patterns: exact, or `*` as
/// any run of characters (`*_ewma`, `trades/*`).
pub fn emits_match(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| glob(p.as_bytes(), name.as_bytes()))
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative wildcard match with one backtrack point: linear in practice.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footprints(max_topics: usize) -> Footprints {
        Footprints::new(
            "trades",
            vec!["trades".into()],
            max_topics,
            TopicOwners::default(),
        )
    }

    #[test]
    fn topics_outside_the_prefixes_are_refused_and_named() {
        let mut f = footprints(100);
        f.admit("csv", 10, "trades/BTC", TopicKind::Topic).unwrap();
        let refusal = f
            .admit("csv", 10, "system/cpu", TopicKind::Topic)
            .unwrap_err();
        assert!(!refusal.quarantines());
        assert_eq!(
            refusal
                .to_output_error("topic update `system/cpu`")
                .to_string(),
            "topic update `system/cpu`: pipeline `trades` owns only `trades/`; \
             declare the prefix in `pipelines.trades.topics`"
        );
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn quotas_per_plugin_and_per_pipeline() {
        let mut f = footprints(3);
        f.admit("a", 2, "trades/1", TopicKind::Topic).unwrap();
        f.admit("a", 2, "trades/2", TopicKind::Topic).unwrap();
        // Known topics are always admitted.
        f.admit("a", 2, "trades/2", TopicKind::Topic).unwrap();
        let over = f.admit("a", 2, "trades/3", TopicKind::Topic).unwrap_err();
        assert_eq!(
            over,
            Refusal::PluginQuota {
                what: "topics",
                limit: 2
            }
        );
        assert!(over.quarantines());
        // Series count apart from topics; the pipeline's quota counts both.
        f.admit("a", 2, "metrics/x", TopicKind::Series).unwrap();
        assert!(matches!(
            f.admit("b", 2, "trades/4", TopicKind::Topic),
            Err(Refusal::PipelineQuota { limit: 3, .. })
        ));
        // Forgetting a plugin's topics frees its quota and the pipeline's.
        let gone = f.forget("a", |_, _| false);
        assert_eq!(gone.len(), 3);
        f.admit("b", 2, "trades/4", TopicKind::Topic).unwrap();
    }

    #[test]
    fn a_declared_series_is_admitted_from_memory_while_nothing_was_removed() {
        let owners = TopicOwners::default();
        let mut f = Footprints::new("trades", vec!["trades".into()], 10, owners.clone());
        let mut other = Footprints::new("other", vec!["other".into()], 10, owners);
        let named = |topic: &'static str| move || topic;
        let admit =
            |f: &mut Footprints, declared, topic| f.admit_declared("m", 5, declared, named(topic));
        assert_eq!(
            &*admit(&mut f, (1, 0), "metrics/x/A").unwrap(),
            "metrics/x/A"
        );
        // Known by its number: its name is not asked for.
        let unnamed = || -> &str { panic!("admitted again by name") };
        assert_eq!(
            &*f.admit_declared("m", 5, (1, 0), unnamed).unwrap(),
            "metrics/x/A"
        );
        // The same number of another numbering (the instance reset or was rebuilt)
        // is another series.
        assert_eq!(
            &*admit(&mut f, (2, 0), "metrics/x/B").unwrap(),
            "metrics/x/B"
        );
        assert_eq!(f.len(), 2);
        // Removed (expired): admitted again, counted again, claimed again.
        f.removed("metrics/x/B");
        assert_eq!(f.len(), 1);
        assert_eq!(
            &*admit(&mut f, (2, 0), "metrics/x/B").unwrap(),
            "metrics/x/B"
        );
        assert_eq!(f.len(), 2);
        assert!(matches!(
            other.admit("m", 5, "metrics/x/B", TopicKind::Series),
            Err(Refusal::SeriesTaken { .. })
        ));
        // Refusals are not remembered: a plugin over its quota stays refused.
        for n in 1..4 {
            admit(
                &mut f,
                (2, n),
                ["metrics/x/C", "metrics/x/D", "metrics/x/E"][n as usize - 1],
            )
            .unwrap();
        }
        let over = admit(&mut f, (2, 9), "metrics/x/F").unwrap_err();
        assert!(matches!(
            over,
            Refusal::PluginQuota {
                what: "series",
                limit: 5
            }
        ));
        assert!(admit(&mut f, (2, 9), "metrics/x/F").is_err());
    }

    #[test]
    fn series_of_another_pipeline_are_refused() {
        let owners = TopicOwners::default();
        let mut a = Footprints::new("a", vec!["a".into()], 10, owners.clone());
        let mut b = Footprints::new("b", vec!["b".into()], 10, owners.clone());
        a.admit("m", 5, "metrics/x/BTC", TopicKind::Series).unwrap();
        assert!(matches!(
            b.admit("m", 5, "metrics/x/BTC", TopicKind::Series),
            Err(Refusal::SeriesTaken { .. })
        ));
        // Once `a` drops it, `b` may publish it.
        a.removed("metrics/x/BTC");
        b.admit("m", 5, "metrics/x/BTC", TopicKind::Series).unwrap();
    }

    #[test]
    fn forget_keeps_what_the_new_version_still_emits() {
        let mut f = footprints(10);
        f.admit("m", 5, "metrics/x_ewma/BTC", TopicKind::Series)
            .unwrap();
        f.admit("m", 5, "metrics/y_min/BTC", TopicKind::Series)
            .unwrap();
        let patterns = vec!["*_ewma".to_string()];
        let gone = f.forget("m", |topic, _| {
            let name = topic.split('/').nth(1).unwrap_or_default();
            emits_match(&patterns, name)
        });
        assert_eq!(gone, vec![Arc::<str>::from("metrics/y_min/BTC")]);
    }

    #[test]
    fn emits_patterns() {
        let p = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(emits_match(&p(&["*_ewma"]), "trade_price_ewma"));
        assert!(!emits_match(&p(&["*_ewma"]), "trade_price"));
        assert!(emits_match(&p(&["trades/*"]), "trades/BTC"));
        assert!(emits_match(&p(&["trade_price"]), "trade_price"));
        assert!(emits_match(&p(&["a*b*c"]), "axxbyyc"));
        assert!(!emits_match(&p(&["a*b*c"]), "axxbyy"));
        assert!(!emits_match(&[], "x"));
    }
}
