//! The brokers topics are published through (`[broker]`): the in-memory hub of
//! this host (`memory`, the default).

mod config;
mod memory;

pub use config::{BrokerSection, BrokerType};
pub use memory::HubBroker;
