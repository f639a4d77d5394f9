//! Who may write which topics: each pipeline owns the topic prefixes its config
//! declares, and sample series (`metrics/...`) belong to the first pipeline that
//! publishes them. `_wasmeter/` belongs to the host. Shared by every pipeline of a
//! host, so two pipelines can never write the same topic.

use foldhash::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use thiserror::Error;
use wasmeter_core::sample::METRICS_PREFIX;
use wasmeter_core::validate::{HOST_PREFIX, is_topic_name};

/// A prefix a pipeline cannot claim.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClaimError {
    /// Not a topic name (after removing a trailing `/`, `/*` or `/**`).
    #[error("`{prefix}` is not a topic prefix (segments of [A-Za-z0-9_.:-] separated by `/`)")]
    Invalid {
        /// As declared.
        prefix: String,
    },
    /// Reserved for the host or for sample series.
    #[error("`{prefix}` is reserved: `{reserved}/` belongs to {owner}")]
    Reserved {
        /// As declared.
        prefix: String,
        /// The reserved namespace.
        reserved: &'static str,
        /// Who owns it.
        owner: &'static str,
    },
    /// Another pipeline owns it, or a prefix inside or around it.
    #[error("`{prefix}` overlaps `{theirs}`, owned by pipeline `{pipeline}`")]
    Taken {
        /// As declared.
        prefix: String,
        /// The other pipeline's prefix.
        theirs: String,
        /// The other pipeline.
        pipeline: String,
    },
}

/// A normalised topic prefix: `trades`, `trades/` and `trades/*` all own `trades`
/// and every topic below it.
pub fn normalize_prefix(prefix: &str) -> Result<String, ClaimError> {
    let trimmed = prefix
        .strip_suffix("/**")
        .or_else(|| prefix.strip_suffix("/*"))
        .or_else(|| prefix.strip_suffix('/'))
        .unwrap_or(prefix);
    if !is_topic_name(trimmed) {
        return Err(ClaimError::Invalid {
            prefix: prefix.into(),
        });
    }
    for (reserved, owner) in [(HOST_PREFIX, "the host"), (METRICS_PREFIX, "sample series")] {
        if under(trimmed, reserved) || under(reserved, trimmed) {
            return Err(ClaimError::Reserved {
                prefix: prefix.into(),
                reserved,
                owner,
            });
        }
    }
    Ok(trimmed.to_string())
}

/// True if `topic` is `prefix` or lies below it.
pub fn under(topic: &str, prefix: &str) -> bool {
    topic
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// True if one of `prefixes` (normalised) owns `topic`.
pub fn owned_by(prefixes: &[String], topic: &str) -> bool {
    prefixes.iter().any(|p| under(topic, p))
}

/// Every pipeline's prefixes and the owner of every sample series.
#[derive(Debug, Clone, Default)]
pub struct TopicOwners(Arc<Mutex<Owners>>);

#[derive(Debug, Default)]
struct Owners {
    prefixes: HashMap<String, Vec<String>>,
    series: HashMap<Arc<str>, Arc<str>>,
}

impl TopicOwners {
    fn lock(&self) -> MutexGuard<'_, Owners> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives `pipeline` the `prefixes` (normalised), replacing what it had; refused,
    /// changing nothing, if one overlaps a prefix of another pipeline.
    pub fn claim_prefixes(&self, pipeline: &str, prefixes: &[String]) -> Result<(), ClaimError> {
        let mut owners = self.lock();
        for prefix in prefixes {
            for (other, theirs) in &owners.prefixes {
                if other == pipeline {
                    continue;
                }
                if let Some(t) = theirs.iter().find(|t| under(prefix, t) || under(t, prefix)) {
                    return Err(ClaimError::Taken {
                        prefix: prefix.clone(),
                        theirs: t.clone(),
                        pipeline: other.clone(),
                    });
                }
            }
        }
        owners
            .prefixes
            .insert(pipeline.to_string(), prefixes.to_vec());
        Ok(())
    }

    /// Claims the series topic for `pipeline` unless another pipeline has it;
    /// returns the owner when it is another pipeline.
    pub fn claim_series(&self, pipeline: &Arc<str>, topic: &Arc<str>) -> Option<Arc<str>> {
        let mut owners = self.lock();
        let owner = owners
            .series
            .entry(topic.clone())
            .or_insert_with(|| pipeline.clone());
        (owner != pipeline).then(|| owner.clone())
    }

    /// Gives up `pipeline`'s claims on these series topics.
    pub fn release_series<'a>(
        &self,
        pipeline: &str,
        topics: impl IntoIterator<Item = &'a Arc<str>>,
    ) {
        let mut owners = self.lock();
        for topic in topics {
            if owners.series.get(topic).is_some_and(|o| &**o == pipeline) {
                owners.series.remove(topic);
            }
        }
    }

    /// The pipeline (its owner name: a sharded pipeline's group) that owns
    /// `topic`: its sample series, or the prefix it is under.
    pub fn owner_of(&self, topic: &str) -> Option<String> {
        let owners = self.lock();
        if let Some(owner) = owners.series.get(topic) {
            return Some(owner.to_string());
        }
        owners
            .prefixes
            .iter()
            .find(|(_, prefixes)| prefixes.iter().any(|p| under(topic, p)))
            .map(|(pipeline, _)| pipeline.clone())
    }

    /// Gives up everything `pipeline` owns (it stopped for good).
    pub fn release(&self, pipeline: &str) {
        let mut owners = self.lock();
        owners.prefixes.remove(pipeline);
        owners.series.retain(|_, owner| &**owner != pipeline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| normalize_prefix(p).unwrap()).collect()
    }

    #[test]
    fn prefixes_are_normalised_and_checked() {
        assert_eq!(normalize_prefix("trades/*").unwrap(), "trades");
        assert_eq!(normalize_prefix("trades/**").unwrap(), "trades");
        assert_eq!(normalize_prefix("a/b/").unwrap(), "a/b");
        assert_eq!(
            normalize_prefix("bad name").unwrap_err().to_string(),
            "`bad name` is not a topic prefix (segments of [A-Za-z0-9_.:-] separated by `/`)"
        );
        assert_eq!(
            normalize_prefix("_wasmeter/plugins")
                .unwrap_err()
                .to_string(),
            "`_wasmeter/plugins` is reserved: `_wasmeter/` belongs to the host"
        );
        assert!(matches!(
            normalize_prefix("metrics"),
            Err(ClaimError::Reserved { .. })
        ));
    }

    #[test]
    fn a_prefix_owns_itself_and_below_only() {
        let p = prefixes(&["trades"]);
        assert!(owned_by(&p, "trades"));
        assert!(owned_by(&p, "trades/BTC"));
        assert!(!owned_by(&p, "tradesX/BTC"));
        assert!(!owned_by(&p, "history/BTC"));
    }

    #[test]
    fn overlapping_prefixes_of_two_pipelines_are_refused() {
        let owners = TopicOwners::default();
        owners.claim_prefixes("a", &prefixes(&["trades"])).unwrap();
        let err = owners
            .claim_prefixes("b", &prefixes(&["history", "trades/btc"]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`trades/btc` overlaps `trades`, owned by pipeline `a`"
        );
        // Refused whole: `b` got nothing, so `history` is still free.
        owners.claim_prefixes("c", &prefixes(&["history"])).unwrap();
        // A pipeline may re-claim (a restart) and others may take what it released.
        owners.claim_prefixes("a", &prefixes(&["trades"])).unwrap();
        owners.release("a");
        owners.claim_prefixes("b", &prefixes(&["trades"])).unwrap();
    }

    #[test]
    fn the_first_pipeline_to_publish_a_series_owns_it() {
        let owners = TopicOwners::default();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let topic: Arc<str> = "metrics/x/BTC".into();
        assert_eq!(owners.claim_series(&a, &topic), None);
        assert_eq!(owners.claim_series(&a, &topic), None);
        assert_eq!(owners.claim_series(&b, &topic), Some(a.clone()));
        owners.release_series("b", [&topic]);
        assert_eq!(owners.claim_series(&b, &topic), Some(a.clone()));
        owners.release_series("a", [&topic]);
        assert_eq!(owners.claim_series(&b, &topic), None);
    }
}
