//! Samples out of the host: encoders for the time-series databases' write
//! protocols (Prometheus remote_write, InfluxDB line protocol).

pub mod line;
pub mod remote_write;
pub mod series;
