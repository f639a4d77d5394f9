//! Every self-metric's name, type and help, in one place. Counter names omit the
//! `_total` suffix: the writer adds it (both exposition formats want it on samples).

/// Gauge or counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Goes up and down.
    Gauge,
    /// Only goes up (since the host started).
    Counter,
}

/// A metric family: name (without `_total`), type and help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    /// The family name, `wasmeter_` prefixed, with its unit (`_bytes`, `_seconds`).
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// One line of help.
    pub help: &'static str,
}

const fn counter(name: &'static str, help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind: Kind::Counter,
        help,
    }
}

const fn gauge(name: &'static str, help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind: Kind::Gauge,
        help,
    }
}

// Sources, labelled `source`.
/// Bytes read from files.
pub const SOURCE_READ_BYTES: MetricDef =
    counter("wasmeter_source_read_bytes", "Bytes read from files.");
/// Records handed to the pipeline.
pub const SOURCE_RECORDS: MetricDef =
    counter("wasmeter_source_records", "Records handed to the pipeline.");
/// Chunks handed to the pipeline.
pub const SOURCE_CHUNKS: MetricDef = counter(
    "wasmeter_source_chunks",
    "Chunks of whole records handed to the pipeline.",
);
/// Rotations seen.
pub const SOURCE_ROTATIONS: MetricDef = counter(
    "wasmeter_source_rotations",
    "Files rotated away (read to their end).",
);
/// Truncations seen.
pub const SOURCE_TRUNCATIONS: MetricDef = counter(
    "wasmeter_source_truncations",
    "Files truncated or rewritten, read again from 0.",
);
/// Oversized lines skipped.
pub const SOURCE_OVERSIZED_LINES: MetricDef = counter(
    "wasmeter_source_oversized_lines",
    "Lines longer than max_line_bytes, skipped.",
);
/// Read errors.
pub const SOURCE_READ_ERRORS: MetricDef = counter(
    "wasmeter_source_read_errors",
    "Failed opens, stats and reads (retried).",
);
/// Open files.
pub const SOURCE_OPEN_FILES: MetricDef = gauge("wasmeter_source_open_files", "Files open now.");
/// The descriptor budget.
pub const SOURCE_OPEN_BUDGET: MetricDef = gauge(
    "wasmeter_source_open_files_budget",
    "Files the source may keep open at once (its share of the descriptor budget).",
);
/// Files waiting for a descriptor.
pub const SOURCE_FILES_WAITING: MetricDef = gauge(
    "wasmeter_source_files_waiting",
    "Files with bytes to read that wait in the fair queue for a descriptor.",
);
/// Files tracked, open or not.
pub const SOURCE_FILES_TRACKED: MetricDef = gauge(
    "wasmeter_source_files_tracked",
    "Files tailed, open or closed while idle or waiting.",
);
/// Opens put off for lack of a descriptor.
pub const SOURCE_OPENS_DEFERRED: MetricDef = counter(
    "wasmeter_source_opens_deferred",
    "Opens put off because the budget was used up or the system refused (EMFILE/ENFILE).",
);
/// Idle files closed.
pub const SOURCE_IDLE_CLOSES: MetricDef = counter(
    "wasmeter_source_idle_closes",
    "Files closed after reading nothing for a while (reopened when they grow).",
);
/// Checkpointed files found again after a rename.
pub const SOURCE_FILES_FOUND_RENAMED: MetricDef = counter(
    "wasmeter_source_files_found_renamed",
    "Checkpointed files found under another name in the watched directories.",
);
/// Checkpointed files gone with unread bytes.
pub const SOURCE_FILES_GONE: MetricDef = counter(
    "wasmeter_source_files_gone",
    "Checkpointed files that were gone for good when looked for.",
);
/// Bytes those files had unread.
pub const SOURCE_BYTES_GONE: MetricDef = counter(
    "wasmeter_source_bytes_gone",
    "Bytes gone files had not been read (lost with them).",
);

// Pipelines, labelled `pipeline`.
/// Chunks processed.
pub const PIPELINE_CHUNKS: MetricDef = counter("wasmeter_pipeline_chunks", "Chunks processed.");
/// Malformed records.
pub const PIPELINE_RECORD_ERRORS: MetricDef = counter(
    "wasmeter_pipeline_record_errors",
    "Records reported malformed (skipped).",
);
/// Samples produced.
pub const PIPELINE_SAMPLES: MetricDef = counter(
    "wasmeter_pipeline_samples",
    "Samples produced by collectors and metric plugins.",
);
/// Changes published.
pub const PIPELINE_CHANGES: MetricDef = counter(
    "wasmeter_pipeline_changes_published",
    "Topic changes published to the hub.",
);
/// Changes the broker refused.
pub const PIPELINE_CHANGES_REFUSED: MetricDef = counter(
    "wasmeter_pipeline_changes_refused",
    "Topic changes the broker refused (a bad name, a kind mismatch, its topic limit): kept in the state, not published.",
);
/// Failed flushes to an unreachable broker.
pub const PIPELINE_FLUSH_FAILURES: MetricDef = counter(
    "wasmeter_pipeline_broker_flush_failures",
    "Flushes of published changes that failed because the broker was unreachable (each retried; input waits).",
);
/// Waiting for the broker.
pub const PIPELINE_BROKER_WAITING: MetricDef = gauge(
    "wasmeter_pipeline_broker_waiting",
    "1 while the pipeline waits for an unreachable broker to take its changes (input waits in the files).",
);
/// Series changes held for the next tick.
pub const PIPELINE_SERIES_CHANGES_HELD: MetricDef = counter(
    "wasmeter_pipeline_series_changes_held",
    "Changes of sample-series topics nobody subscribed to, held and merged into the next tick's publish.",
);
/// Series not created as topics.
pub const PIPELINE_SERIES_DORMANT: MetricDef = gauge(
    "wasmeter_pipeline_series_dormant",
    "Sample series whose topics are not created because no subscriber watches for them (their newest values are kept).",
);
/// Delta fallbacks.
pub const PIPELINE_DELTA_FALLBACKS: MetricDef = counter(
    "wasmeter_pipeline_delta_fallbacks",
    "Delta plugin failures answered with the exact difference.",
);
/// Checkpoints written.
pub const PIPELINE_CHECKPOINTS: MetricDef =
    counter("wasmeter_pipeline_checkpoints", "Checkpoints written.");
/// Checkpoint failures.
pub const PIPELINE_CHECKPOINT_ERRORS: MetricDef = counter(
    "wasmeter_pipeline_checkpoint_errors",
    "Checkpoints that failed to write.",
);
/// Checkpoints skipped for a failed state export.
pub const PIPELINE_CHECKPOINTS_SKIPPED: MetricDef = counter(
    "wasmeter_pipeline_checkpoints_skipped",
    "Checkpoints skipped because a plugin could not export its state (the previous one stays).",
);
/// Plugin output refused by ownership or quotas.
pub const PIPELINE_REFUSED_OUTPUTS: MetricDef = counter(
    "wasmeter_pipeline_refused_outputs",
    "Items of plugin output refused: topics the pipeline does not own, series of another pipeline, quotas.",
);
/// Input paused by a quarantined collector.
pub const PIPELINE_INPUT_PAUSED: MetricDef = gauge(
    "wasmeter_pipeline_input_paused",
    "1 while the collector is quarantined and unread input waits in the files.",
);
/// Bytes not yet checkpointed.
pub const PIPELINE_CHECKPOINT_LAG_BYTES: MetricDef = gauge(
    "wasmeter_pipeline_checkpoint_lag_bytes",
    "Bytes processed but not yet in a written checkpoint.",
);
/// Age of the oldest unsaved change.
pub const PIPELINE_CHECKPOINT_LAG_SECONDS: MetricDef = gauge(
    "wasmeter_pipeline_checkpoint_lag_seconds",
    "Age of the oldest change not yet in a written checkpoint (0: all saved).",
);
/// Plugin swaps.
pub const PIPELINE_SWAPS: MetricDef = counter(
    "wasmeter_pipeline_plugin_swaps",
    "Plugin swaps applied (reloads, admin swaps, rollbacks, additions).",
);
/// Longest swap pause.
pub const PIPELINE_SWAP_PAUSE_MAX_SECONDS: MetricDef = gauge(
    "wasmeter_pipeline_swap_pause_max_seconds",
    "Longest time the pipeline stopped processing for one plugin swap.",
);

// Plugins, labelled `pipeline`, `plugin` (instance name) and `role`.
/// Calls.
pub const PLUGIN_CALLS: MetricDef = counter(
    "wasmeter_plugin_calls",
    "Guest calls made (including failed ones).",
);
/// Failed calls.
pub const PLUGIN_ERRORS: MetricDef = counter("wasmeter_plugin_errors", "Guest calls that failed.");
/// Busy time.
pub const PLUGIN_BUSY_SECONDS: MetricDef = counter(
    "wasmeter_plugin_busy_seconds",
    "Time spent inside the plugin.",
);
/// Rebuilds.
pub const PLUGIN_REBUILDS: MetricDef = counter(
    "wasmeter_plugin_rebuilds",
    "Instances rebuilt after a trap, timeout or OOM.",
);
/// Recycles.
pub const PLUGIN_RECYCLES: MetricDef = counter(
    "wasmeter_plugin_recycles",
    "Instances replaced by a fresh one carrying their state because their memory had grown past three quarters of the cap.",
);
/// Quarantined now.
pub const PLUGIN_QUARANTINED: MetricDef = gauge(
    "wasmeter_plugin_quarantined",
    "1 while the plugin is quarantined.",
);
/// Quarantines.
pub const PLUGIN_QUARANTINES: MetricDef = counter(
    "wasmeter_plugin_quarantines",
    "Times the plugin was quarantined.",
);

// Server and hub.
/// Open connections.
pub const SERVER_CONNECTIONS: MetricDef = gauge(
    "wasmeter_server_connections",
    "WebSocket and SSE connections open now.",
);
/// Accepted connections.
pub const SERVER_CONNECTIONS_ACCEPTED: MetricDef = counter(
    "wasmeter_server_connections_accepted",
    "Connections accepted.",
);
/// Refused connections.
pub const SERVER_CONNECTIONS_REFUSED: MetricDef = counter(
    "wasmeter_server_connections_refused",
    "Connections refused by max_connections.",
);
/// Open plain HTTP connections.
pub const SERVER_HTTP_CONNECTIONS: MetricDef = gauge(
    "wasmeter_server_http_connections",
    "Plain HTTP connections open now (not WebSocket or SSE subscribers).",
);
/// Refused plain HTTP connections.
pub const SERVER_HTTP_CONNECTIONS_REFUSED: MetricDef = counter(
    "wasmeter_server_http_connections_refused",
    "Connections refused by max_http_connections (503, closed unread).",
);
/// Conflations.
pub const SERVER_CONFLATIONS: MetricDef = counter(
    "wasmeter_server_conflations",
    "Snapshots sent to subscribers behind on a topic instead of updates.",
);
/// Gap notices on stream topics.
pub const SERVER_STREAM_GAPS: MetricDef = counter(
    "wasmeter_server_stream_gaps",
    "Gap notices sent: a subscriber of a stream topic fell behind its history and missed events.",
);
/// Slow-consumer disconnects (the only drop).
pub const SERVER_SLOW_CONSUMER_DISCONNECTS: MetricDef = counter(
    "wasmeter_server_slow_consumer_disconnects",
    "Connections closed because writes stalled (WebSocket 4003, SSE and HTTP dropped).",
);
/// Heartbeat timeouts.
pub const SERVER_HEARTBEAT_TIMEOUTS: MetricDef = counter(
    "wasmeter_server_heartbeat_timeouts",
    "Connections closed for silence (4001).",
);
/// Abusive disconnects.
pub const SERVER_ABUSIVE_DISCONNECTS: MetricDef = counter(
    "wasmeter_server_abusive_disconnects",
    "Connections closed as abusive (4002, 1009).",
);
/// Client messages that do not parse.
pub const SERVER_MALFORMED_MESSAGES: MetricDef = counter(
    "wasmeter_server_malformed_messages",
    "Client messages that do not parse (or text frames that are not UTF-8).",
);
/// Well-formed client messages refused.
pub const SERVER_REFUSED_MESSAGES: MetricDef = counter(
    "wasmeter_server_refused_messages",
    "Well-formed client messages refused (invalid names or patterns, limits).",
);
/// Requests and refreshes refused for their token.
pub const SERVER_UNAUTHORIZED: MetricDef = counter(
    "wasmeter_server_unauthorized_requests",
    "Requests and token refreshes refused for a missing, invalid or expired token (401).",
);
/// Reads refused as outside the token's topics.
pub const SERVER_FORBIDDEN: MetricDef = counter(
    "wasmeter_server_forbidden_requests",
    "Subscriptions and topic reads refused as outside the token's topics (403).",
);
/// Connections ended by their token's expiry.
pub const SERVER_TOKEN_EXPIRIES: MetricDef = counter(
    "wasmeter_server_token_expiries",
    "Connections ended because their token expired without a refresh (4004).",
);
/// Frames sent, labelled `format`.
pub const SERVER_SENT_MESSAGES: MetricDef = counter(
    "wasmeter_server_sent_messages",
    "Frames sent to subscribers, by format.",
);
/// Bytes sent, labelled `format`.
pub const SERVER_SENT_BYTES: MetricDef = counter(
    "wasmeter_server_sent_bytes",
    "Payload bytes sent to subscribers, by format.",
);
/// Topics held.
pub const HUB_TOPICS: MetricDef = gauge("wasmeter_hub_topics", "Topics held by the hub.");
/// Subscriptions attached.
pub const HUB_SUBSCRIPTIONS: MetricDef = gauge(
    "wasmeter_hub_subscriptions",
    "Subscriber slots attached to topics.",
);
/// Messages published.
pub const HUB_PUBLISHED: MetricDef = counter(
    "wasmeter_hub_published_messages",
    "Messages published (each encoded at most once per format).",
);
/// Updates held in the hub's histories.
pub const HUB_HISTORY_MESSAGES: MetricDef = gauge(
    "wasmeter_hub_history_messages",
    "Updates held in the topics' histories (for resume and subscribers a little behind).",
);
/// Their size.
pub const HUB_HISTORY_BYTES: MetricDef = gauge(
    "wasmeter_hub_history_bytes",
    "Bytes of the updates held in the topics' histories, each counted with its delta and one encoded frame (bounded by history_bytes).",
);
/// Sample series held for `/metrics`.
pub const SERIES: MetricDef = gauge(
    "wasmeter_series",
    "Sample series whose latest value /metrics exposes.",
);

// The metric history.
/// Samples stored.
pub const HISTORY_WRITTEN: MetricDef = counter(
    "wasmeter_history_samples_written",
    "Samples stored in the metric history.",
);
/// Samples refused.
pub const HISTORY_REFUSED: MetricDef = counter(
    "wasmeter_history_samples_refused",
    "Samples the metric history refused: out of order, duplicate timestamp, too old, too far ahead, over the series limit.",
);
/// Failed batches.
pub const HISTORY_FAILED_BATCHES: MetricDef = counter(
    "wasmeter_history_failed_batches",
    "Batches of samples the metric history could not write (an I/O error; see the log).",
);
/// Series held.
pub const HISTORY_SERIES: MetricDef =
    gauge("wasmeter_history_series", "Series in the metric history.");
/// Disk used.
pub const HISTORY_DISK_BYTES: MetricDef = gauge(
    "wasmeter_history_disk_bytes",
    "Bytes the metric history uses on disk.",
);
/// Chunks indexed, by tier.
pub const HISTORY_CHUNKS: MetricDef = gauge(
    "wasmeter_history_chunks",
    "Chunks of the metric history on disk, by tier (each indexed on disk beside its partition file, in about ten bytes).",
);

// The process, as Prometheus client libraries name it.
/// CPU time.
pub const PROCESS_CPU: MetricDef = counter(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
);
/// Resident memory.
pub const PROCESS_RESIDENT: MetricDef = gauge(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
);
/// Virtual memory.
pub const PROCESS_VIRTUAL: MetricDef = gauge(
    "process_virtual_memory_bytes",
    "Virtual memory size in bytes.",
);
/// Open descriptors.
pub const PROCESS_OPEN_FDS: MetricDef =
    gauge("process_open_fds", "Number of open file descriptors.");
/// Descriptor limit.
pub const PROCESS_MAX_FDS: MetricDef = gauge(
    "process_max_fds",
    "Maximum number of open file descriptors.",
);
/// Start time.
pub const PROCESS_START: MetricDef = gauge(
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
);
/// Build information.
pub const BUILD_INFO: MetricDef = gauge(
    "wasmeter_build_info",
    "Always 1; labelled with the host's version and the plugin contract versions it loads.",
);

// Outputs, labelled `output`, and alert delivery.
/// Samples the output took.
pub const OUTPUT_SELECTED: MetricDef = counter(
    "wasmeter_output_samples_selected",
    "Samples an output's series selectors took.",
);
/// Samples sent.
pub const OUTPUT_SENT: MetricDef = counter(
    "wasmeter_output_samples_sent",
    "Samples an output's database accepted.",
);
/// Requests.
pub const OUTPUT_REQUESTS: MetricDef =
    counter("wasmeter_output_requests", "Requests an output made.");
/// Failed requests.
pub const OUTPUT_FAILED: MetricDef = counter(
    "wasmeter_output_requests_failed",
    "Requests that failed: connection errors, timeouts, HTTP errors (retried or refused).",
);
/// Retries.
pub const OUTPUT_RETRIED: MetricDef = counter(
    "wasmeter_output_requests_retried",
    "Requests sent again after a failure.",
);
/// Buffered bytes.
pub const OUTPUT_BUFFERED: MetricDef = gauge(
    "wasmeter_output_buffered_bytes",
    "Encoded bytes waiting to be sent, in memory and on disk.",
);
/// Disk buffer bytes.
pub const OUTPUT_DISK: MetricDef = gauge(
    "wasmeter_output_disk_buffer_bytes",
    "Bytes of an output's disk buffer.",
);
/// Dropped samples.
pub const OUTPUT_DROPPED: MetricDef = counter(
    "wasmeter_output_samples_dropped",
    "Samples an output gave up: `reason` buffer_full (the oldest went), refused (the database answered 4xx) or corrupt (a damaged buffer frame).",
);
/// Alerts sent.
pub const ALERTS_SENT: MetricDef = counter(
    "wasmeter_alerts_sent",
    "Alert notices delivered, counted per receiver.",
);
/// Alert deliveries failed.
pub const ALERTS_FAILED: MetricDef = counter(
    "wasmeter_alerts_requests_failed",
    "Alert deliveries that failed (retried at the next evaluation).",
);
/// Alerts firing.
pub const ALERTS_FIRING: MetricDef = gauge("wasmeter_alerts_firing", "Alerts firing now.");
/// Alerts refused.
pub const ALERTS_REFUSED: MetricDef = counter(
    "wasmeter_alerts_refused",
    "Alerts not tracked because `alerts.max_alerts` were.",
);
/// Following Redis.
pub const BROKER_CONNECTED: MetricDef = gauge(
    "wasmeter_broker_redis_connected",
    "1 while this host follows Redis (subscribed and hydrated); 0 while it cannot reach it.",
);
/// Messages the follower applied.
pub const BROKER_APPLIED: MetricDef = counter(
    "wasmeter_broker_redis_messages_applied",
    "Changes from Redis applied to this host's topics.",
);
/// Duplicates dropped.
pub const BROKER_DUPLICATES: MetricDef = counter(
    "wasmeter_broker_redis_duplicates",
    "Changes from Redis this host already held (dropped).",
);
/// Gaps repaired.
pub const BROKER_GAPS_REPAIRED: MetricDef = counter(
    "wasmeter_broker_redis_gaps_repaired",
    "Lost changes filled in from the topic's history in Redis.",
);
/// Gaps reset.
pub const BROKER_GAPS_RESET: MetricDef = counter(
    "wasmeter_broker_redis_gaps_reset",
    "Lost changes the history no longer held: the topic restarted from its newest state (subscribers got a snapshot).",
);
/// Reconnects.
pub const BROKER_RECONNECTS: MetricDef = counter(
    "wasmeter_broker_redis_reconnects",
    "Reconnections to Redis after the subscription was lost.",
);
/// Follower overflows.
pub const BROKER_OVERFLOWS: MetricDef = counter(
    "wasmeter_broker_redis_overflows",
    "Changes dropped because this host fell behind Redis's channel (each triggers a full check).",
);
/// Changes published.
pub const BROKER_PUBLISHED: MetricDef = counter(
    "wasmeter_broker_redis_published",
    "Changes this host's pipelines published to Redis.",
);
/// Changes refused or fenced.
pub const BROKER_REFUSED: MetricDef = counter(
    "wasmeter_broker_redis_refused",
    "Changes Redis refused: `reason` fenced (another host holds the pipeline's lease) or refused (a kind mismatch).",
);
/// Failed round trips.
pub const BROKER_FAILED: MetricDef = counter(
    "wasmeter_broker_redis_failed_round_trips",
    "Round trips to Redis that failed (the changes wait and are sent again).",
);
/// Changes queued.
pub const BROKER_QUEUED: MetricDef = gauge(
    "wasmeter_broker_redis_queued",
    "Changes waiting to be sent to Redis.",
);
/// Leases held.
pub const BROKER_LEASES: MetricDef = gauge(
    "wasmeter_broker_leases_held",
    "Pipelines this host produces (holds the lease of).",
);
