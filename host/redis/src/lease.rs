//! Leases (one producer per pipeline across nodes) and the checkpoints they guard.

use std::time::Duration;

use redis::Value;

use crate::broker::{RedisBroker, fenced_error};
use crate::error::BrokerError;
use crate::value::{array, bytes, int, lease_node, text};

/// A lease held on one pipeline: the value stored in its lease key
/// (`<token>:<node>`) and the fencing number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The pipeline leased.
    pub pipeline: String,
    /// The node holding it.
    pub node: String,
    /// The fencing number: grows with every acquisition of this pipeline's lease,
    /// never reused (its counter outlives the lease).
    pub token: u64,
}

impl Fence {
    /// The value the lease key holds while this fence is valid.
    pub fn value(&self) -> String {
        format!("{}:{}", self.token, self.node)
    }
}

impl RedisBroker {
    /// Takes the pipeline's lease for `ttl` if nobody holds it (`SET NX PX` and the
    /// fencing number's `INCR`, in one script). None: another node holds it.
    pub async fn acquire(
        &self,
        pipeline: &str,
        node: &str,
        ttl: Duration,
    ) -> Result<Option<Fence>, BrokerError> {
        let k = &self.inner.keys;
        let call = (
            vec![
                k.lease(pipeline).into_bytes(),
                k.fence(pipeline).into_bytes(),
            ],
            vec![node.as_bytes().to_vec(), ttl_ms(ttl)],
        );
        let r = self
            .eval_pipeline("acquire", &self.inner.scripts.acquire, &[call])
            .await?;
        Ok(int(&r[0]).map(|token| Fence {
            pipeline: pipeline.to_owned(),
            node: node.to_owned(),
            token: token as u64,
        }))
    }

    /// Extends our lease to `ttl` from now, only if the key still holds our fence.
    /// False: the lease was lost (expired, or taken by another node).
    pub async fn renew(&self, fence: &Fence, ttl: Duration) -> Result<bool, BrokerError> {
        let call = (
            vec![self.inner.keys.lease(&fence.pipeline).into_bytes()],
            vec![fence.value().into_bytes(), ttl_ms(ttl)],
        );
        let r = self
            .eval_pipeline("renew", &self.inner.scripts.renew, &[call])
            .await?;
        Ok(int(&r[0]) == Some(1))
    }

    /// Gives our lease up (if it is still ours) so another node can take over at once.
    pub async fn release(&self, fence: &Fence) -> Result<(), BrokerError> {
        let call = (
            vec![self.inner.keys.lease(&fence.pipeline).into_bytes()],
            vec![fence.value().into_bytes()],
        );
        self.eval_pipeline("release", &self.inner.scripts.release, &[call])
            .await?;
        Ok(())
    }

    /// The node holding the pipeline's lease now, if any.
    pub async fn holder(&self, pipeline: &str) -> Result<Option<String>, BrokerError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.inner.keys.lease(pipeline));
        let mut conn = self.conn();
        let v: Value = self.bounded("holder", cmd.query_async(&mut conn)).await?;
        Ok(text(&v).and_then(lease_node))
    }

    /// Stores the pipeline's checkpoint, only while `fence` still holds the lease
    /// (else `Fenced` and nothing is written).
    pub async fn save_checkpoint(&self, fence: &Fence, data: &[u8]) -> Result<(), BrokerError> {
        let k = &self.inner.keys;
        let call = (
            vec![
                k.lease(&fence.pipeline).into_bytes(),
                k.checkpoint(&fence.pipeline).into_bytes(),
            ],
            vec![fence.value().into_bytes(), data.to_vec()],
        );
        let r = self
            .eval_pipeline(
                "save_checkpoint",
                &self.inner.scripts.save_checkpoint,
                &[call],
            )
            .await?;
        let r = array(&r[0]).unwrap_or_default();
        if r.first().and_then(int) == Some(1) {
            Ok(())
        } else {
            Err(fenced_error(Some(fence), r))
        }
    }

    /// The pipeline's last saved checkpoint.
    pub async fn load_checkpoint(&self, pipeline: &str) -> Result<Option<Vec<u8>>, BrokerError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.inner.keys.checkpoint(pipeline));
        let mut conn = self.conn();
        let v: Value = self
            .bounded("load_checkpoint", cmd.query_async(&mut conn))
            .await?;
        Ok(bytes(&v).map(<[u8]>::to_vec))
    }
}

fn ttl_ms(ttl: Duration) -> Vec<u8> {
    ttl.as_millis().max(1).to_string().into_bytes()
}
