//! The key layout in Redis (see the crate docs).

/// Builds every key and the channel name from the configured prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The one channel every change and removal is published on.
    pub(crate) fn channel(&self) -> String {
        format!("{}changes", self.prefix)
    }

    /// A topic's hash: `epoch`, `kind`, `seq`, `last`.
    pub(crate) fn meta(&self, topic: &str) -> String {
        format!("{}meta:{topic}", self.prefix)
    }

    /// A topic's history stream: entry id `<seq>-0`, field `b` = the message body.
    pub(crate) fn hist(&self, topic: &str) -> String {
        format!("{}hist:{topic}", self.prefix)
    }

    /// The topic named by a meta key found by SCAN.
    pub(crate) fn topic_of_meta<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(self.prefix.as_str())?
            .strip_prefix("meta:")
    }

    /// The SCAN pattern of every meta key: the prefix with glob characters escaped.
    pub(crate) fn meta_pattern(&self) -> String {
        let mut p = String::with_capacity(self.prefix.len() + 8);
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push_str("meta:*");
        p
    }

    /// A pipeline's lease: `<token>:<node>`, with a TTL.
    pub(crate) fn lease(&self, pipeline: &str) -> String {
        format!("{}lease:{pipeline}", self.prefix)
    }

    /// A pipeline's fencing counter: never deleted, so tokens are never reused.
    pub(crate) fn fence(&self, pipeline: &str) -> String {
        format!("{}fence:{pipeline}", self.prefix)
    }

    /// A pipeline's checkpoint (opaque bytes).
    pub(crate) fn checkpoint(&self, pipeline: &str) -> String {
        format!("{}checkpoint:{pipeline}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_escapes_glob_characters_and_topics_round_trip() {
        let k = Keys::new("a*b[1]:");
        assert_eq!(k.meta_pattern(), "a\\*b\\[1\\]:meta:*");
        assert_eq!(k.topic_of_meta(&k.meta("x/y:z")), Some("x/y:z"));
        assert_eq!(k.topic_of_meta("other:meta:x"), None);
    }
}
