//! Publishing changes and removing topics, through the scripts.

use redis::Value;
use wasmeter_core::change::TopicChange;

use crate::Positioned;
use crate::broker::{RedisBroker, fence_args, fenced_error};
use crate::error::BrokerError;
use crate::lease::Fence;
use crate::value::{array, int, text};
use crate::wire::{encode_body, fresh_epoch};

impl RedisBroker {
    /// Publishes the changes in one round trip, each atomically in Redis (see the
    /// crate docs). The outer error: the round trip failed (`Unavailable`: some
    /// changes may have been applied). Inner results, one per change in order:
    /// its position, or why it was refused (`Fenced`, `Refused`); a refused change
    /// does not stop the others.
    pub async fn publish(
        &self,
        fence: Option<&Fence>,
        changes: &[TopicChange],
    ) -> Result<Vec<Result<Positioned, BrokerError>>, BrokerError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let k = &self.inner.keys;
        let cfg = &self.inner.cfg;
        let (lease, fence_value) = fence_args(k, fence);
        let ttl = cfg.topic_ttl.as_millis().to_string().into_bytes();
        let channel = k.channel().into_bytes();
        let calls: Vec<_> = changes
            .iter()
            .map(|c| {
                let (kind, maxlen) = if c.event {
                    ("e", cfg.stream_history_len)
                } else {
                    ("s", cfg.history_len)
                };
                let keys = vec![
                    k.meta(&c.topic).into_bytes(),
                    k.hist(&c.topic).into_bytes(),
                    lease.clone(),
                ];
                let args = vec![
                    fence_value.clone(),
                    fresh_epoch().into_bytes(),
                    kind.as_bytes().to_vec(),
                    encode_body(c),
                    maxlen.to_string().into_bytes(),
                    ttl.clone(),
                    channel.clone(),
                ];
                (keys, args)
            })
            .collect();
        let replies = self
            .eval_pipeline("publish", &self.inner.scripts.publish, &calls)
            .await?;
        if replies.len() != changes.len() {
            return Err(BrokerError::unavailable(
                "publish",
                format!("{} replies to {} changes", replies.len(), changes.len()),
            ));
        }
        Ok(changes
            .iter()
            .zip(replies)
            .map(|(c, r)| publish_reply(fence, c, &r))
            .collect())
    }

    /// Deletes the topic's keys and publishes its removal, fenced like `publish`.
    /// False: there was no such topic.
    pub async fn remove(&self, fence: Option<&Fence>, topic: &str) -> Result<bool, BrokerError> {
        let k = &self.inner.keys;
        let (lease, fence_value) = fence_args(k, fence);
        let call = (
            vec![
                k.meta(topic).into_bytes(),
                k.hist(topic).into_bytes(),
                lease,
            ],
            vec![
                fence_value,
                topic.as_bytes().to_vec(),
                k.channel().into_bytes(),
            ],
        );
        let r = self
            .eval_pipeline("remove", &self.inner.scripts.remove, &[call])
            .await?;
        let r = array(&r[0]).unwrap_or_default();
        match r.first().and_then(int) {
            Some(1) => Ok(true),
            Some(2) => Ok(false),
            _ => Err(fenced_error(fence, r)),
        }
    }
}

fn publish_reply(
    fence: Option<&Fence>,
    c: &TopicChange,
    r: &Value,
) -> Result<Positioned, BrokerError> {
    let r = array(r).unwrap_or_default();
    if r.first().and_then(int) == Some(1) {
        let (Some(epoch), Some(seq)) = (r.get(1).and_then(text), r.get(2).and_then(int)) else {
            return Err(BrokerError::unavailable(
                "publish",
                "malformed script reply",
            ));
        };
        let seq = seq as u64;
        return Ok(Positioned {
            epoch: epoch.into(),
            prev_seq: seq - 1,
            seq,
            change: c.clone(),
        });
    }
    match r.get(1).and_then(text) {
        Some("refused") => {
            let kind = match r.get(2).and_then(text) {
                Some("e") => "a stream (event) topic",
                _ => "a state topic",
            };
            let got = if c.event {
                "an event"
            } else {
                "a state change"
            };
            Err(BrokerError::Refused {
                topic: c.topic.to_string(),
                reason: format!("{got} to {kind} (a topic's kind is fixed when it is created)"),
            })
        }
        _ => Err(fenced_error(fence, r)),
    }
}
