//! The brokers topics are published through (`[broker]`): the in-memory hub of
//! this host (`memory`, the default).

mod memory;

pub use memory::HubBroker;
