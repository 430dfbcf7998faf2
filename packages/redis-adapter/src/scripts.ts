import type { Redis } from 'ioredis'

/**
 * Reads an entry if it belongs to the cache's current generation.
 * KEYS: entry, generation. Returns false (a miss) or {stored, remaining ms}.
 * The stored value is `<generation>:<payload>`; comparing the header here
 * makes `clear()` O(1) and keeps a hit at one round trip.
 */
const READ_ENTRY = `
local stored = redis.call('GET', KEYS[1])
if not stored then return false end
local generation = redis.call('GET', KEYS[2]) or '0'
local separator = string.find(stored, ':', 1, true)
if separator == nil or string.sub(stored, 1, separator - 1) ~= generation then return false end
return {stored, redis.call('PTTL', KEYS[1])}
`

/**
 * Runs a batch of writes, then publishes their invalidations, in one atomic
 * step (coherence mechanism 1: no write lands without its message, and a
 * burst of writes in one tick becomes one message — mechanism 5).
 *
 * KEYS: two per operation, the target and the cache's generation key.
 * ARGV: channel ('' for none), message, then three per operation: kind,
 * payload, ttl ms. Kinds: 's' set, 'a' set if no live entry of this
 * generation (a fill after a miss), 'd' delete, 'c' clear (bump generation).
 * Returns one 1/0 per operation (0: an 'a' that found a live entry).
 * For 'a' only the header is read (GETRANGE), never the value.
 */
const WRITE_BATCH = `
local results = {}
local operations = (#ARGV - 2) / 3
for i = 1, operations do
  local kind = ARGV[i * 3]
  local key = KEYS[i * 2 - 1]
  local generationKey = KEYS[i * 2]
  if kind == 'c' then
    redis.call('INCR', generationKey)
    results[i] = 1
  elseif kind == 'd' then
    redis.call('UNLINK', key)
    results[i] = 1
  else
    local generation = redis.call('GET', generationKey) or '0'
    local write = true
    if kind == 'a' then
      local header = redis.call('GETRANGE', key, 0, 24)
      local separator = string.find(header, ':', 1, true)
      if separator ~= nil and string.sub(header, 1, separator - 1) == generation then write = false end
    end
    if write then
      redis.call('SET', key, generation .. ':' .. ARGV[i * 3 + 1], 'PX', ARGV[i * 3 + 2])
      results[i] = 1
    else
      results[i] = 0
    end
  end
end
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return results
`

export interface ScriptedRedis extends Redis {
  tiercacheGetBuffer(entryKey: string, generationKey: string): Promise<[Buffer, number] | null>
  tiercacheWrite(numberOfKeys: number, ...keysAndArgs: Array<string | Buffer>): Promise<number[]>
}

/** Registers the scripts on a client (EVALSHA, reloaded by ioredis after NOSCRIPT, e.g. after a Redis restart). */
export function defineScripts(client: Redis): ScriptedRedis {
  const scripted = client as ScriptedRedis
  if (typeof scripted.tiercacheGetBuffer !== 'function') {
    client.defineCommand('tiercacheGet', { numberOfKeys: 2, lua: READ_ENTRY })
    client.defineCommand('tiercacheWrite', { lua: WRITE_BATCH }) // numberOfKeys given per call
  }
  return scripted
}
