//! Several wasmeter hosts on the same topics, through Redis.
//!
//! One node (the lease holder of a pipeline) publishes each topic change with
//! [`RedisBroker::publish`]; Redis assigns its position (per-topic epoch and seq),
//! appends it to the topic's history and publishes it on one channel; every node
//! runs a [`Follower`] that applies the channel to its local copy of the topics
//! (a [`Replica`], the hub), repairing gaps from history. The design follows
//! Centrifugo's Redis broker: one Lua script per publish, history in a stream whose
//! entry ids are the seqs, positions checked periodically because PUB/SUB can
//! lose messages.
//!
//! # Key layout
//!
//! Every key and the channel start with `key_prefix` (`P`, default `wasmeter:`):
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `P meta:<topic>` | hash | `epoch`, `kind` (`s` state / `e` events), `seq` (newest), `last` (newest body) | `topic_ttl`, renewed by each publish |
//! | `P hist:<topic>` | stream | entry `<seq>-0`, field `b` = body; `MAXLEN` `history_len` (`stream_history_len` for event topics) | as the hash |
//! | `P changes` | channel | `c\|<seq>\|<epoch>\|<body>` per change, `r\|<epoch>\|<topic>` per removal | — |
//! | `P lease:<pipeline>` | string | `<token>:<node>` of the lease holder | the lease TTL |
//! | `P fence:<pipeline>` | integer | the last fencing number handed out | none (never reused) |
//! | `P checkpoint:<pipeline>` | string | the pipeline's checkpoint, opaque bytes | none |
//!
//! (no space after `P`: `wasmeter:meta:trades/BTC`). A body is JSON:
//! `{"topic","delta","stale","state","ts","event"}`: every message carries the
//! topic's full state, so any single message is a valid snapshot. The scripts use
//! several keys: Redis Cluster is not supported (one Redis, optionally replicated).
//!
//! # The scripts' contract
//!
//! - **publish** (one per change, pipelined, one round trip per batch): if fenced,
//!   the lease key must hold the fence's value, else `Fenced` and nothing is
//!   written. A topic is created on first use with the publisher's fresh random
//!   epoch and the change's kind; a change of the other kind is `Refused`. Then
//!   `seq = HINCRBY seq`, `XADD hist MAXLEN n <seq>-0`, `last = body`, `PEXPIRE`
//!   both keys, `PUBLISH`. All of it atomic: seqs of a topic are 1, 2, 3... with
//!   no hole, in the order of the history and of the channel.
//! - **remove**: fenced like publish; deletes both keys and publishes the removal
//!   with the epoch removed (a node ignores a removal of another epoch).
//! - **acquire**: `SET NX PX` of the lease, the fencing number being `INCR` of the
//!   pipeline's counter; **renew**/**release**: only if the lease still holds our
//!   value; **save_checkpoint**: `SET` only if it does.
//! - **history** (`MULTI`: head, oldest entry, `XRANGE (<after>-0 + COUNT n`):
//!   returns the epoch, the messages after a seq and whether they reach back to it.
//!
//! Every call is bounded by `command_timeout` (connects by `connect_timeout`) and
//! fails `Unavailable` rather than wait; the broker reconnects on the next call.
//!
//! # What a follower does
//!
//! It subscribes first, then hydrates (every topic of Redis and of the replica is
//! compared with its head and repaired), then applies frames in order: a frame
//! of the same epoch with `seq == newest + 1` is applied as continuous; `seq <=
//! newest` is a duplicate and dropped; a gap is filled from history when it still
//! reaches back, else the newest message is applied with `continuous = false`
//! (subscribers get a snapshot); another epoch replaces the topic. Every
//! `check_interval` it compares its topics with Redis's heads (`heads`, 1,000 per
//! round trip): a topic behind is repaired (the lost *last* message has no
//! successor to reveal it), a topic Redis no longer holds is removed.
//!
//! # Failure modes
//!
//! - **A PUB/SUB message lost** (connection dropped, follower too slow): the next
//!   message reveals the gap, or the periodic check does; repaired from history,
//!   or reset to the newest state. Frames wait in a bounded buffer (`follower_buffer`); an
//!   overflow is counted and triggers a full check. A new topic whose only
//!   message was lost appears at its next publish or at the next full check
//!   (reconnect, overflow, or every tenth periodic check, which SCANs Redis's
//!   topics; the others cover the topics the node holds).
//! - **Redis unreachable**: every call fails `Unavailable` within `command_timeout`
//!   (connects within `connect_timeout`): nothing hangs. A publish that fails so
//!   may or may not have been applied: at-least-once. The follower reports
//!   `connected: false` since when and why, keeps the replica as it is (nodes keep
//!   serving), and reconnects with capped exponential backoff and jitter; then it
//!   re-subscribes and hydrates.
//! - **Redis restarted empty** (or failed over to a replica that lost writes):
//!   the follower reconnects and hydrates. Topics absent from Redis then are
//!   **removed** from the replica: Redis is the only shared truth, a topic it does
//!   not hold is one no other node can serve with the same positions, and keeping
//!   it would make a node that resubscribed differ from one that started later.
//!   Topics come back with new epochs when their producer publishes again: as new
//!   topics, or, if the publish comes before the follower hydrated, replacing the
//!   local ones (`continuous = false`: subscribers get a snapshot). A producer
//!   that wants its topics back at once publishes their state again (its publish
//!   calls fail `Unavailable` while Redis is down, which tells it to).
//! - **Topic expiry**: a topic not published for `topic_ttl` expires in Redis
//!   without notice; the next check removes it from every replica.
//! - **Lease lost** (expired while the holder stalled): its publishes, removals
//!   and checkpoint saves fail `Fenced` and write nothing; the new holder has a
//!   higher fencing number.

mod broker;
mod config;
mod error;
mod follower;
mod keys;
mod lease;
mod publish;
mod read;
mod replica;
mod scripts;
mod status;
mod sync;
mod value;
mod wire;

pub use broker::RedisBroker;
pub use config::RedisConfig;
pub use error::BrokerError;
pub use follower::Follower;
pub use lease::Fence;
pub use read::History;
pub use replica::{Positioned, Replica};
pub use status::FollowerStatus;
