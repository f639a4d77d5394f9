//! The pipeline with in-process plugins: its data path, swaps, quarantine and
//! checkpoints, fed through its real input and observed from outside.

mod broker;
mod checkpoints;
mod data_path;
mod quarantine;
mod samples;
mod sizing;
mod support;
mod swaps;
mod unread;
