import type { RedisClient } from './connections.js'

/*
 * Stored layout: an entry key holds `<generation>,<fresh until>,<tag bytes>:
 * <tags><msgpack envelope>` — the cache's generation token when written, the
 * server time (ms) until which the entry is fresh, then the tags it was
 * written under with their versions (`tag U+001F version U+001F`…) — and
 * expires (PX) at the end of its grace. The cache's generation key holds a token that `clear()`
 * replaces. An entry is live only while its generation equals the current
 * token, which makes clear O(1) and lets a read check it in the same round
 * trip; its freshness lets the fill path take a lease for a stale entry.
 *
 * Bookkeeping loss fails closed (coherence mechanism 6). Under `maxmemory`
 * with an `allkeys-*` policy Redis may evict any key between two commands,
 * ours included: the generation, the tag epoch, tag versions, leases. So:
 *   - every bookkeeping value is fresh: the server's TIME in µs and a nonce
 *     the client made unique (its process's random prefix and a counter), so
 *     a key that is lost and made again never equals any value it held
 *     before, even if the server's clock steps back;
 *   - an entry is live only if every key it was written under (generation,
 *     tag versions) holds the value recorded in the entry: a missing key
 *     matches nothing;
 *   - a lease records the generation and tag epoch it was taken under, both
 *     present (made fresh at lease time if missing, or no lease is granted);
 *     a fill lands only if its lease, the generation and the epoch all still
 *     hold exactly those values: anything missing refuses the fill;
 *   - every invalidation can fall back to a deletion, and a deletion is never
 *     refused by Redis (DEL and UNLINK are allowed when out of memory). Under
 *     `noeviction` a script's first write that would grow memory fails with
 *     OOM (later ones are let through: Redis does not stop a script that has
 *     written); each write here runs under pcall, and when the write that
 *     would replace a value fails, the key is deleted instead, so what is
 *     left is always the closed state, never a half-applied one.
 * docs/bookkeeping.md has the table: each key, what losing it costs, the
 * test that proves it.
 */

/** Bytes of an entry's head that can hold its header (generation, freshness) and the ':' after it. */
export const HEADER_BYTES = 64

/** Lua shared by the scripts: keys derived from the generation key, scopes, entry headers. */
const PARSE_HEADER = `
local function tag_key(generationKey, tag)
  return string.sub(generationKey, 1, -4) .. 'tag:' .. tag
end
-- Replaced by every tag invalidation of the cache: a lease records it, so a
-- fill begun before a tag invalidation cannot land after it.
local function epoch_key(generationKey)
  return string.sub(generationKey, 1, -4) .. 'tagepoch'
end
local function failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end
-- A bookkeeping value no key of this deployment ever held before: the
-- server's time in µs and a nonce unique to the caller (see the top of scripts.ts).
-- About 40 bytes at most: a generation must leave room in an entry's header
-- for its fresh-until time and tag length within HEADER_BYTES.
local function fresh_value(time, nonce)
  return time[1] .. string.format('%06d', tonumber(time[2])) .. '.' .. nonce
end
-- The scope of a fill: the generation and the tag epoch, both present. nil
-- when either is missing: a fill that recorded a scope can then never match.
local function current_scope(generationKey, generation)
  if not generation then return nil end
  local epoch = redis.call('GET', epoch_key(generationKey))
  if not epoch then return nil end
  return generation .. '/' .. epoch
end
-- The entry's fresh-until time if it is live: written under the current
-- generation, and every tag it was written under still holds the version it
-- had then (invalidateTags replaces a tag's version; a lost one matches
-- nothing). nil otherwise.
local function parse_header(stored, generation, generationKey)
  if not stored or not generation then return nil end
  local head = string.sub(stored, 1, ${HEADER_BYTES})
  local separator = string.find(head, ':', 1, true)
  if separator == nil then return nil end
  local first = string.find(head, ',', 1, true)
  if first == nil or first > separator or string.sub(head, 1, first - 1) ~= generation then return nil end
  local second = string.find(head, ',', first + 1, true)
  if second == nil or second > separator then return nil end
  local freshUntil = tonumber(string.sub(head, first + 1, second - 1)) or 0
  local tagBytes = tonumber(string.sub(head, second + 1, separator - 1)) or 0
  if tagBytes > 0 then
    local section = string.sub(stored, separator + 1, separator + tagBytes)
    local pos = 1
    while pos <= #section do
      local after_tag = string.find(section, '\\31', pos, true)
      if after_tag == nil then return nil end
      local after_version = string.find(section, '\\31', after_tag + 1, true)
      if after_version == nil then return nil end
      local current = redis.call('GET', tag_key(generationKey, string.sub(section, pos, after_tag - 1)))
      if current ~= string.sub(section, after_tag + 1, after_version - 1) then return nil end
      pos = after_version + 1
    end
  end
  return freshUntil
end
-- A lease holds '<token>|<scope>': a lease taken before a clear or a tag
-- invalidation (another scope) no longer blocks anyone.
local function lease_blocks(held, scope)
  if not held then return false end
  local bar = string.find(held, '|', 1, true)
  return bar ~= nil and string.sub(held, bar + 1) == scope
end
`

/**
 * Reads a batch of entries — every read issued in one tick on a connection —
 * each only if it belongs to its cache's current generation. On the fill
 * path (lease ms > 0), a miss or a stale entry also asks for the key's lease
 * (coherence mechanism 4) in the same round trip; a lease left from before a
 * clear or a tag invalidation is taken over. So does a fresh entry due for
 * its refresh ahead of expiry: one whose remaining freshness, by the
 * server's TIME (as fresh vs stale is decided), is at most the read's
 * refresh-ahead ms, so that one caller across every instance refreshes it.
 * Reads run in submission order, so a second read of a key in the batch
 * sees the lease the first one took, as it would one round trip later.
 * KEYS: three per read: entry, generation, lease. ARGV: three per read:
 * lease ms ('0': no lease), refresh-ahead ms ('0': lease a fresh entry
 * never), token (unique: it is also the nonce of any bookkeeping value this
 * read has to make).
 * Returns per read false (a miss, no lease asked); {stored, remaining ms} (a
 * hit); {stored, remaining ms, scope, granted} (a stale hit, or a fresh one
 * due for refresh, on the fill path); {false, scope, granted} (a miss on the
 * fill path); granted is 1
 * (the lease is the caller's), 0 (another caller holds it) or 2 (no lease
 * can be had: Redis refused the write, out of memory; scope is then false
 * and the caller fills nothing); then, last, the server's time in ms (the
 * fast path's clock sample, server-clock.ts).
 */
const READ_ENTRIES = `${PARSE_HEADER}
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
-- The scope a new lease is bound to. A missing generation or tag epoch is
-- made first, with a fresh value: a lease never records a missing key, so a
-- key lost later cannot make its scope match again. nil if Redis refused
-- the write (out of memory).
local function scope_for_lease(generationKey, generation, nonce)
  if not generation then
    generation = fresh_value(time, nonce)
    if failed(redis.pcall('SET', generationKey, generation)) then return nil end
  end
  local epochKey = epoch_key(generationKey)
  local epoch = redis.call('GET', epochKey)
  if not epoch then
    epoch = fresh_value(time, nonce)
    if failed(redis.pcall('SET', epochKey, epoch)) then return nil end
  end
  return generation .. '/' .. epoch
end
local function take_lease(leaseKey, scope, leaseMs, token)
  if lease_blocks(redis.call('GET', leaseKey), scope) then return 0 end
  if failed(redis.pcall('SET', leaseKey, token .. '|' .. scope, 'PX', leaseMs)) then return 2 end
  return 1
end
local function read(entryKey, generationKey, leaseKey, leaseMs, aheadMs, token)
  local stored = redis.call('GET', entryKey)
  local generation = redis.call('GET', generationKey)
  local freshUntil = parse_header(stored, generation, generationKey)
  local remaining = nil
  if freshUntil ~= nil then
    remaining = redis.call('PTTL', entryKey)
    -- Fresh and not yet due for its refresh ahead ('0': due only once stale).
    if leaseMs == '0' or freshUntil - now > (tonumber(aheadMs) or 0) then return {stored, remaining} end
  elseif leaseMs == '0' then
    return false
  end
  local scope = scope_for_lease(generationKey, generation, token)
  local granted = 2
  if scope ~= nil then granted = take_lease(leaseKey, scope, leaseMs, token) end
  if granted == 2 then scope = false end
  if remaining ~= nil then return {stored, remaining, scope, granted} end
  return {false, scope, granted}
end
local results = {}
for i = 1, #KEYS / 3 do
  results[i] = read(KEYS[i * 3 - 2], KEYS[i * 3 - 1], KEYS[i * 3], ARGV[i * 3 - 2], ARGV[i * 3 - 1], ARGV[i * 3])
end
results[#KEYS / 3 + 1] = now
return results
`

/**
 * Reads several entries of one cache in one round trip (`getMany`).
 * KEYS: generation, then the entries. Returns, per entry, false or
 * {stored, remaining ms}.
 */
const READ_MANY = `${PARSE_HEADER}
local generation = redis.call('GET', KEYS[1])
local results = {}
for i = 2, #KEYS do
  local stored = redis.call('GET', KEYS[i])
  if parse_header(stored, generation, KEYS[1]) ~= nil then
    results[i - 1] = {stored, redis.call('PTTL', KEYS[i])}
  else
    results[i - 1] = false
  end
end
return results
`

/**
 * Runs a batch of writes, then publishes their invalidations, in one atomic
 * step (coherence mechanism 1: no write lands without its message; and a
 * burst of writes in one tick becomes one message per channel, mechanism 5).
 *
 * KEYS: three per operation: the target, the cache's generation key, the
 * key's lease. ARGV: a nonce unique to this call (for the fresh bookkeeping
 * values it makes), the publish command (PUBLISH, or SPUBLISH on Cluster,
 * where every key and the channel share one slot), the number of messages
 * P, then P (channel, message) pairs (with carryValues: 'Pc', then P
(channel, plain message, carrying head, operations) quadruples: see the
publish loop), then seven per operation: kind, payload, ttl ms (to the end of
 * grace), fresh ms, lease token, expected scope, tags (joined by
 * U+001F). Kinds:
 *   's' set (revokes the key's lease), 'd' delete (revokes it too),
 *   'c' clear (new generation token: fills begun before it cannot land),
 *   'f' fill under a lease: written only while the lease is still this
 *       token and the generation and tag epoch still hold the values the
 *       lease recorded (a missing one refuses it: mechanism 6),
 *   'a' fill without a lease: written only if no fresh entry of this generation,
 *   'r' release a lease this token holds (the factory failed),
 *   't' invalidate tags (payload: the tags, U+001F-joined): their versions
 *       are deleted, so every entry written under them reads as a miss, in
 *       O(1) per tag; and the cache's tag epoch is replaced, so no fill begun
 *       before it can land.
 * Returns per operation 1 (written), 0 (not written: lease revoked or
 * expired, scope changed or lost, fresh entry present) or an error string
 * (e.g. OOM under noeviction: then nothing that could reopen an old scope is
 * left behind). Each operation runs under pcall: one failing operation
 * neither stops the others nor the publish; an invalidation for a write that
 * failed costs a reader one L2 read, a write without its invalidation costs
 * coherence.
 */
const WRITE_BATCH = `${PARSE_HEADER}
local nonce = ARGV[1]
local publish = ARGV[2]
-- 'P' messages as (channel, message) pairs; 'Pc' (carryValues) as
-- (channel, plain message, carrying head, operations) quadruples.
local carrying = string.sub(ARGV[3], -1) == 'c'
local width = 2
if carrying then width = 4 end
local messages = tonumber(carrying and string.sub(ARGV[3], 1, -2) or ARGV[3])
local base = 3 + messages * width
local operations = (#ARGV - base) / 7
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local function new_value(i)
  return fresh_value(time, nonce .. '.' .. i)
end
-- Replaces a bookkeeping value by a fresh one; if Redis refuses the write
-- (out of memory), deletes it instead: missing is the closed state too.
local function replace_or_delete(key, i)
  if failed(redis.pcall('SET', key, new_value(i))) then redis.pcall('DEL', key) end
end
-- Drops the lease if this token holds it.
local function drop_own_lease(leaseKey, token)
  local held = redis.pcall('GET', leaseKey)
  if type(held) == 'string' and string.sub(held, 1, #token + 1) == token .. '|' then redis.pcall('DEL', leaseKey) end
end
-- A write that could not be made leaves its key closed: a set removes the
-- older entry and any lease (it was meant to replace them), a fill gives
-- back its own lease. Deletions are never refused, even out of memory.
local function refuse(kind, key, leaseKey, token, err)
  if kind == 's' then
    redis.pcall('UNLINK', key)
    redis.pcall('DEL', leaseKey)
  elseif kind == 'f' then
    drop_own_lease(leaseKey, token)
  end
  return err
end
-- Writes the entry under the generation and its tags, each with its current
-- version, or a fresh one if it has none. The entry is written first: out of
-- memory, Redis refuses a script's first write that would grow memory, so a
-- refused write leaves nothing behind; once a script has written, Redis lets
-- the rest through. The keys the entry names (a missing generation, missing
-- tag versions) are made right after it, in the same atomic step. A version
-- key lives as long as the longest entry written under it (a lost one only
-- turns entries into misses), so none outlives its use.
local function store(i, kind, key, generationKey, leaseKey, payload, ttl, fresh, token, generation, newGeneration, tags)
  local parts, created, existing = {}, {}, {}
  local newVersion = new_value(i)
  for tag in string.gmatch(tags, '[^\\31]+') do
    local versionKey = tag_key(generationKey, tag)
    local version = redis.pcall('GET', versionKey)
    if failed(version) then return refuse(kind, key, leaseKey, token, version.err) end
    if version then
      existing[#existing + 1] = versionKey
    else
      version = newVersion
      created[#created + 1] = versionKey
    end
    parts[#parts + 1] = tag .. '\\31' .. version .. '\\31'
  end
  local section = table.concat(parts)
  local header = generation .. ',' .. (now + tonumber(fresh)) .. ',' .. #section .. ':' .. section
  local reply = redis.pcall('SET', key, header .. payload, 'PX', ttl)
  if failed(reply) then return refuse(kind, key, leaseKey, token, reply.err) end
  if newGeneration then
    reply = redis.pcall('SET', generationKey, generation)
    if failed(reply) then return refuse(kind, key, leaseKey, token, reply.err) end
  end
  for _, versionKey in ipairs(created) do
    reply = redis.pcall('SET', versionKey, newVersion, 'PX', ttl)
    if failed(reply) then return refuse(kind, key, leaseKey, token, reply.err) end
  end
  for _, versionKey in ipairs(existing) do redis.pcall('PEXPIRE', versionKey, ttl, 'GT') end
  redis.pcall('DEL', leaseKey)
  return 1
end
local function run(i, kind, key, generationKey, leaseKey, payload, ttl, fresh, token, expected, tags)
  if kind == 't' then
    -- Deleting a tag's version invalidates its entries (a missing version matches none) and leaves nothing behind.
    for tag in string.gmatch(payload, '[^\\31]+') do
      local reply = redis.pcall('DEL', tag_key(generationKey, tag))
      if failed(reply) then return reply.err end
    end
    replace_or_delete(epoch_key(generationKey), i)
    return 1
  end
  if kind == 'c' then
    replace_or_delete(generationKey, i)
    return 1
  end
  if kind == 'r' then
    drop_own_lease(leaseKey, token)
    return 1
  end
  if kind == 'd' then
    local reply = redis.pcall('UNLINK', key)
    if failed(reply) then return reply.err end
    redis.pcall('DEL', leaseKey)
    return 1
  end
  local generation = redis.pcall('GET', generationKey)
  if failed(generation) then return generation.err end
  if kind == 'f' then
    -- Still this token's lease, under the very generation and tag epoch it
    -- recorded? Revoked, expired, evicted, voided by a clear or a tag
    -- invalidation, or any of them lost: not written.
    local held = redis.pcall('GET', leaseKey)
    if held ~= token .. '|' .. expected or current_scope(generationKey, generation) ~= expected then
      drop_own_lease(leaseKey, token)
      return 0
    end
  end
  local newGeneration = false
  if not generation then
    generation = new_value(i)
    newGeneration = true
  end
  if kind == 'a' then
    local existing = redis.pcall('GET', key)
    if failed(existing) then return existing.err end
    local freshUntil = parse_header(existing, generation, generationKey)
    if freshUntil ~= nil and freshUntil > now then return 0 end
  end
  return store(i, kind, key, generationKey, leaseKey, payload, ttl, fresh, token, generation, newGeneration, tags)
end
local results = {}
for i = 1, operations do
  local a = base + (i - 1) * 7
  local k = (i - 1) * 3
  results[i] = run(i, ARGV[a + 1], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7])
end
for m = 1, messages do
  local at = 3 + (m - 1) * width
  local message = ARGV[at + 2]
  -- carryValues: the values go only if every write they carry returned 1
  -- (stored): a lease revoked, a fresh entry found by ifAbsent, a refused
  -- or failed (OOM) SET sends the plain message. The head is completed with
  -- this script's TIME, from which receivers convert the stored freshness.
  if carrying and ARGV[at + 3] ~= '' then
    local stored = true
    for op in string.gmatch(ARGV[at + 4], '%d+') do
      if results[tonumber(op)] ~= 1 then stored = false end
    end
    if stored then message = ARGV[at + 3] .. string.format('%d', now) .. '}' end
  end
  redis.pcall(publish, ARGV[at + 1], message)
end
return results
`

/** Deletes an entry only if it still holds exactly the bytes that were read (an undecodable entry). */
const DISCARD_IF_UNCHANGED = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

/** One read's reply from READ_ENTRIES (granted 2: no lease could be had, the scope is then null). */
export type ReadReply = [Buffer, number] | [Buffer, number, Buffer | null, number] | [null, Buffer | null, number] | null

/** A connection (one server or a Cluster) with the scripts defined. */
export type ScriptedRedis = RedisClient & ScriptCommands

interface ScriptCommands {
  tiercacheReadBuffer(numberOfKeys: number, ...keysAndArgs: string[]): Promise<ReadReply[]>
  tiercacheWrite(numberOfKeys: number, ...keysAndArgs: Array<string | Buffer>): Promise<Array<number | string>>
  tiercacheDiscard(entryKey: string, stored: Buffer): Promise<number>
  tiercacheGetManyBuffer(numberOfKeys: number, ...keys: string[]): Promise<Array<[Buffer, number] | null>>
}

/** Registers the scripts on a client (EVALSHA, reloaded by ioredis after NOSCRIPT, e.g. after a Redis restart). */
export function defineScripts(client: RedisClient): ScriptedRedis {
  const scripted = client as ScriptedRedis
  if (typeof scripted.tiercacheReadBuffer !== 'function') {
    client.defineCommand('tiercacheRead', { lua: READ_ENTRIES }) // numberOfKeys given per call
    client.defineCommand('tiercacheWrite', { lua: WRITE_BATCH }) // numberOfKeys given per call
    client.defineCommand('tiercacheDiscard', { numberOfKeys: 1, lua: DISCARD_IF_UNCHANGED })
    client.defineCommand('tiercacheGetMany', { lua: READ_MANY }) // numberOfKeys given per call
  }
  return scripted
}
