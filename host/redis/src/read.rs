//! Reading topics: history, the newest message, heads, the list of topics.

use std::collections::BTreeSet;
use std::sync::Arc;

use redis::Value;

use crate::Positioned;
use crate::broker::RedisBroker;
use crate::error::BrokerError;
use crate::value::{array, bytes, entry_seq, int, text};
use crate::wire::decode_body;

/// A read of a topic's history.
#[derive(Debug, Clone)]
pub struct History {
    /// The topic's epoch.
    pub epoch: Arc<str>,
    /// The messages after the asked seq, oldest first, at most the asked limit.
    pub messages: Vec<Positioned>,
    /// True when nothing after the asked seq was trimmed away: `messages` starts
    /// right after it (or the asked seq is the newest). False when the asked seq is
    /// older than the oldest kept message, or not a seq of this epoch at all.
    pub complete: bool,
    /// The newest seq of the topic.
    pub head: u64,
}

impl RedisBroker {
    /// The topic's epoch and up to `limit` messages after `after_seq`, oldest first
    /// (one atomic round trip). None: Redis holds no such topic.
    pub async fn history(
        &self,
        topic: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Option<History>, BrokerError> {
        let k = &self.inner.keys;
        let (meta, hist) = (k.meta(topic), k.hist(topic));
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("HMGET").arg(&meta).arg("epoch").arg("seq");
        pipe.cmd("XRANGE")
            .arg(&hist)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1);
        let after = after_seq.min(u64::MAX - 1);
        if limit > 0 {
            pipe.cmd("XRANGE")
                .arg(&hist)
                .arg(format!("({after}-0"))
                .arg("+")
                .arg("COUNT")
                .arg(limit);
        }
        let mut conn = self.conn();
        let r: Vec<Value> = self.bounded("history", pipe.query_async(&mut conn)).await?;
        let Some((epoch, head)) = r.first().and_then(parse_head) else {
            return Ok(None);
        };
        let oldest = r
            .get(1)
            .and_then(|v| parse_entries(&meta, &epoch, v).ok())
            .and_then(|e| e.first().map(|p| p.seq));
        let messages = match r.get(2) {
            Some(v) => parse_entries(&hist, &epoch, v)?,
            None => Vec::new(),
        };
        let complete =
            after_seq == head || (after_seq < head && oldest.is_some_and(|o| o <= after_seq + 1));
        Ok(Some(History {
            epoch,
            messages,
            complete,
            head,
        }))
    }

    /// The newest message of the topic (kept with its full state in the topic's
    /// hash). None: Redis holds no such topic.
    pub async fn latest(&self, topic: &str) -> Result<Option<Positioned>, BrokerError> {
        let meta = self.inner.keys.meta(topic);
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&meta).arg("epoch").arg("seq").arg("last");
        let mut conn = self.conn();
        let r: Vec<Value> = self.bounded("latest", cmd.query_async(&mut conn)).await?;
        let (Some(epoch), Some(seq), Some(body)) = (
            r.first().and_then(text),
            r.get(1).and_then(int),
            r.get(2).and_then(bytes),
        ) else {
            return Ok(None);
        };
        decode_body(epoch.into(), seq as u64, body)
            .map(Some)
            .map_err(|reason| BrokerError::Corrupt { key: meta, reason })
    }

    /// The epoch and newest seq of each topic (one pipelined round trip).
    pub async fn heads(
        &self,
        topics: &[Arc<str>],
    ) -> Result<Vec<Option<(Arc<str>, u64)>>, BrokerError> {
        if topics.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for t in topics {
            pipe.cmd("HMGET")
                .arg(self.inner.keys.meta(t))
                .arg("epoch")
                .arg("seq");
        }
        let mut conn = self.conn();
        let r: Vec<Value> = self.bounded("heads", pipe.query_async(&mut conn)).await?;
        Ok(r.iter().map(parse_head).collect())
    }

    /// Every topic Redis holds (SCAN in pages, each bounded; never KEYS).
    pub async fn topics(&self) -> Result<Vec<Arc<str>>, BrokerError> {
        let k = &self.inner.keys;
        let pattern = k.meta_pattern();
        let mut conn = self.conn();
        let mut cursor = 0u64;
        let mut found = BTreeSet::new();
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, keys): (u64, Vec<String>) =
                self.bounded("scan", cmd.query_async(&mut conn)).await?;
            found.extend(
                keys.iter()
                    .filter_map(|key| k.topic_of_meta(key).map(Arc::from)),
            );
            if next == 0 {
                return Ok(found.into_iter().collect());
            }
            cursor = next;
        }
    }
}

/// `HMGET meta epoch seq` → the head.
fn parse_head(v: &Value) -> Option<(Arc<str>, u64)> {
    let a = array(v)?;
    Some((
        a.first().and_then(text)?.into(),
        a.get(1).and_then(int)? as u64,
    ))
}

/// An XRANGE reply → messages.
fn parse_entries(key: &str, epoch: &Arc<str>, v: &Value) -> Result<Vec<Positioned>, BrokerError> {
    let corrupt = |reason: String| BrokerError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    let entries = array(v).ok_or_else(|| corrupt("XRANGE reply is not an array".into()))?;
    entries
        .iter()
        .map(|e| {
            let e = array(e).ok_or_else(|| corrupt("entry is not an array".into()))?;
            let seq = e
                .first()
                .and_then(text)
                .and_then(entry_seq)
                .ok_or_else(|| corrupt("entry id is not <seq>-0".into()))?;
            let body = e
                .get(1)
                .and_then(array)
                .and_then(|f| f.get(1))
                .and_then(bytes)
                .ok_or_else(|| corrupt(format!("entry {seq} has no body")))?;
            decode_body(epoch.clone(), seq, body).map_err(|r| corrupt(format!("entry {seq}: {r}")))
        })
        .collect()
}
