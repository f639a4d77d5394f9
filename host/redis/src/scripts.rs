//! The Lua scripts: each runs atomically in Redis (see the crate docs for their contract).

use redis::Script;

/// Publishes one change. KEYS: meta, hist, lease. ARGV: fence value ('' = unfenced),
/// epoch for a new topic, kind ('s' state, 'e' events), body, MAXLEN, TTL ms, channel.
/// Returns `{1, epoch, seq}`, `{0, 'fenced', holder}` or `{0, 'refused', kind}`.
const PUBLISH: &str = r"
if ARGV[1] ~= '' then
  local cur = redis.call('GET', KEYS[3])
  if cur ~= ARGV[1] then return {0, 'fenced', cur or ''} end
end
local kind = redis.call('HGET', KEYS[1], 'kind')
local epoch
if not kind then
  epoch = ARGV[2]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'kind', ARGV[3])
elseif kind ~= ARGV[3] then
  return {0, 'refused', kind}
else
  epoch = redis.call('HGET', KEYS[1], 'epoch')
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], seq .. '-0', 'b', ARGV[4])
redis.call('HSET', KEYS[1], 'last', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PUBLISH', ARGV[7], 'c|' .. seq .. '|' .. epoch .. '|' .. ARGV[4])
return {1, epoch, seq}
";

/// Removes a topic. KEYS: meta, hist, lease. ARGV: fence value, topic, channel.
/// Returns `{1}` (removed), `{2}` (there was nothing) or `{0, 'fenced', holder}`.
const REMOVE: &str = r"
if ARGV[1] ~= '' then
  local cur = redis.call('GET', KEYS[3])
  if cur ~= ARGV[1] then return {0, 'fenced', cur or ''} end
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
redis.call('DEL', KEYS[1], KEYS[2])
if not epoch then return {2} end
redis.call('PUBLISH', ARGV[3], 'r|' .. epoch .. '|' .. ARGV[2])
return {1}
";

/// Takes a free lease. KEYS: lease, fence counter. ARGV: node, TTL ms.
/// Returns the fencing number, or nil when the lease is held.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token
";

/// Extends a lease still ours. KEYS: lease. ARGV: value, TTL ms. Returns 1 or 0.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Gives a lease up if still ours. KEYS: lease. ARGV: value. Returns 1 or 0.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Stores a checkpoint under a lease still ours. KEYS: lease, checkpoint.
/// ARGV: value, bytes. Returns `{1}` or `{0, 'fenced', holder}`.
const SAVE_CHECKPOINT: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return {0, 'fenced', cur or ''} end
redis.call('SET', KEYS[2], ARGV[2])
return {1}
";

/// The scripts, hashed once.
pub(crate) struct Scripts {
    pub(crate) publish: Script,
    pub(crate) remove: Script,
    pub(crate) acquire: Script,
    pub(crate) renew: Script,
    pub(crate) release: Script,
    pub(crate) save_checkpoint: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            publish: Script::new(PUBLISH),
            remove: Script::new(REMOVE),
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
            save_checkpoint: Script::new(SAVE_CHECKPOINT),
        }
    }
}
