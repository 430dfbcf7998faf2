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
 * Writes an entry under the cache's current generation.
 * KEYS: entry, generation. ARGV: payload, ttl ms, '1' to write only if the
 * key holds no live entry of this generation. Returns 1 if written, 0 if not.
 * Only the header is read for the ifAbsent check (GETRANGE), never the value.
 */
const WRITE_ENTRY = `
local generation = redis.call('GET', KEYS[2]) or '0'
if ARGV[3] == '1' then
  local header = redis.call('GETRANGE', KEYS[1], 0, 24)
  local separator = string.find(header, ':', 1, true)
  if separator ~= nil and string.sub(header, 1, separator - 1) == generation then return 0 end
end
redis.call('SET', KEYS[1], generation .. ':' .. ARGV[1], 'PX', ARGV[2])
return 1
`

export interface ScriptedRedis extends Redis {
  tiercacheGetBuffer(entryKey: string, generationKey: string): Promise<[Buffer, number] | null>
  tiercacheSet(entryKey: string, generationKey: string, payload: Buffer, ttlMs: string, ifAbsent: '0' | '1'): Promise<number>
}

/** Registers the scripts on a client (EVALSHA, reloaded by ioredis after NOSCRIPT, e.g. after a Redis restart). */
export function defineScripts(client: Redis): ScriptedRedis {
  const scripted = client as ScriptedRedis
  if (typeof scripted.tiercacheGetBuffer !== 'function') {
    client.defineCommand('tiercacheGet', { numberOfKeys: 2, lua: READ_ENTRY })
    client.defineCommand('tiercacheSet', { numberOfKeys: 2, lua: WRITE_ENTRY })
  }
  return scripted
}
