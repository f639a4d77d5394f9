//! Samples out of the host: encoders for the time-series databases' write
//! protocols (Prometheus remote_write, InfluxDB line protocol) and the bounded
//! on-disk buffer an output keeps what it could not send yet in.

pub mod buffer;
pub mod line;
pub mod remote_write;
pub mod series;
