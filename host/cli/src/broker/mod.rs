//! The brokers topics are published through (`[broker]`): the in-memory hub of
//! this host (`memory`, the default), or Redis shared by several hosts
//! (`redis`: `redis.rs` publishes, `replica.rs` follows, `producer.rs` holds
//! the pipelines' leases).

mod cluster;
mod config;
mod memory;
mod producer;
mod redis;
mod replica;

pub use cluster::{BrokerView, Cluster};
pub use config::{BrokerSection, BrokerType};
pub use memory::HubBroker;
pub use producer::Producer;
pub use redis::{RedisTopics, WriterStats};
pub use replica::HubReplica;
