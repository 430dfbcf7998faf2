/**
 * The types of a cache's options, each documented where it is defined: what
 * it does, its default, and the failure it prevents. Their checking lives
 * in config.ts.
 */
import type { Bus, Tier } from '../contracts.js'
import type { InvalidationPlan } from '../describe.js'
import type { Duration } from '../duration.js'
import type { TierCacheError } from '../errors.js'
import type { Logger } from '../events.js'
import type { ReadPolicyOptions } from '../policy.js'
import type { TierSkipOptions } from './skips.js'

/**
 * The options of {@link createCache}. Every option is checked at creation:
 * an unknown name, a malformed duration or a bad value throws
 * `InvalidOptionError` naming the cache and the option, so a typo never
 * becomes a silent default. The read-path options ({@link ReadPolicyOptions}:
 * `ttl`, `grace`, timeouts, `refreshAhead`, …) are the cache's defaults; a
 * `getOrSet` call may override them.
 */
export interface CacheOptions extends ReadPolicyOptions {
  /**
   * Names the cache: prefixes its keys in shared tiers and its traffic on the
   * bus, and labels its errors and log lines. 1-100 characters from
   * `A-Z a-z 0-9 _ . - /`. Required.
   *
   * Prevents: two caches on one Redis reading or clearing each other's
   * entries (`clear()` and tags act on this name only), and errors nobody can
   * trace to a cache.
   */
  name: string
  /**
   * The tiers, nearest first: `[memoryTier()]` (L1 only), `[redisTier()]`
   * (L2 only) or `[memoryTier(), redisTier()]`. At most one local and one
   * shared tier; the local one comes first. Required.
   *
   * Prevents: a tier order that would read Redis before memory, or two local
   * tiers splitting one budget; both are refused at creation.
   */
  tiers: readonly Tier[]
  /**
   * Carries invalidations between instances (`redisBus()` or `memoryBus()`;
   * one per process serves every cache).
   *
   * Prevents: other instances serving their L1 copy of a value this instance
   * replaced until its TTL ends. Without a bus that is exactly what happens:
   * only give an L1 to a cache without a bus when a single instance writes
   * and reads it.
   *
   * @defaultValue none
   */
  bus?: Bus
  /**
   * The coherence bound: after a write resolves on any instance, this
   * instance stops returning the old value (from L1, grace, fail-safe or a
   * load it joined) within this time, even when connections drop, Redis
   * restarts or pauses, or messages are lost. L1 is read only while the bus
   * has proven, within this window, that its subscription delivers.
   *
   * Prevents: an instance that silently lost its subscription (a half-dead
   * socket, a partition) serving old values for as long as it is cut off.
   *
   * @defaultValue the bus's `maxStaleness` (`'1s'` for `redisBus`)
   */
  maxStaleness?: Duration
  /**
   * Receives every error the cache recovered from without failing the caller:
   * an L2 read that fell back to the factory, a fill that could not be
   * written, a factory failure answered with a stale value (fail-safe), a
   * failed background refresh. A throwing handler is ignored.
   *
   * Prevents: failures that never reach a caller going unseen (Redis failing
   * every read while the database silently takes the load).
   *
   * @defaultValue the `logger` if one is given; else one process warning per
   * error code and cache
   */
  onError?: (error: TierCacheError) => void
  /**
   * `'auto'`: once a group of keys (a namespace, a key template's scope) has
   * been sampled, stop using L2 for it while its factory costs less than two
   * L2 round trips (the advisor's `l1-only`), and go back when that changes.
   * Each decision is logged. Writes still go to L2 and the bus, so coherence
   * is unchanged.
   *
   * Prevents: paying a Redis round trip on every lookup (and two on every
   * miss) for values cheaper to recompute than to fetch.
   *
   * @defaultValue `'fixed'`
   */
  policy?: 'fixed' | 'auto'
  /**
   * A pino-compatible logger: `warn(object, message)` required; `error`,
   * `info` and `debug` used when present. One line per state change (a
   * connection lost, with host:port and the cause, at `error`; restored at
   * `info`; the circuit opened or closed), and, when no `onError` is given,
   * each recovered error at `warn`: the first of each code at once, the rest
   * summed up in one line every 10 s. A throwing logger is ignored.
   *
   * Prevents: an outage that leaves no trace in your logs, and one that
   * floods them with a line per request.
   *
   * @defaultValue none: `error`-level state changes and the first recovered
   * error of each code become process warnings
   */
  logger?: Logger
  /**
   * Skips the shared tier after `failureThreshold` consecutive failures, for
   * `openFor`; then a background probe (never a user's request) tries the
   * tier, and its answer closes the circuit. While open, reads go to the
   * factory (single-flight still applies) and writes reject at once with
   * `WriteFailedError` (its `cause` a `CircuitOpenError`). `false` turns it
   * off.
   *
   * Prevents: every request waiting out the tier's timeout while Redis is
   * failing, and a dead Redis being probed by user requests.
   *
   * @defaultValue `{ failureThreshold: 5, openFor: '2s' }`
   */
  circuitBreaker?:
    | {
        /** Consecutive shared-tier failures that open the circuit. @defaultValue 5 */
        failureThreshold?: number
        /** How long the circuit stays open before the background probe tries the tier. @defaultValue `'2s'` */
        openFor?: Duration
      }
    | false
  /**
   * What L1 serves while the bus cannot prove its subscription delivers (a
   * gap, a lost connection, Redis down):
   * - `'reuse'`: the coherence contract, with the database
   *   shielded. L1 values from before the outage are not served; a value
   *   this instance loaded itself (from L2 or its factory) at `t0` is served
   *   until `t0 + maxStaleness` (rule 7: any write it missed completed after
   *   `t0`), so each key costs at most one load per `maxStaleness` per
   *   instance however long the outage lasts.
   * - `'bypass-l1'`: no reuse; every read goes to L2, or to the factory when
   *   L2 is down too (the database takes the whole read load).
   * - `{ serveStale: '30s' }`: also serves older L1 values, while
   *   `now < max(verifiedAt, t0) + serveStale`. A breach of the default
   *   contract the user chose: values up to `serveStale` old, not
   *   `maxStaleness`, may be served during an outage.
   * - `'serve-stale-l1'` (deprecated): `{ serveStale: Infinity }`, no bound at all.
   *
   * Prevents (`'reuse'`): both failures of an outage at once — values from
   * before it served past the bound, and the database hit by every read.
   *
   * @defaultValue `'reuse'`
   */
  onBusDown?: 'reuse' | 'bypass-l1' | { serveStale: Duration } | 'serve-stale-l1'
  /**
   * Opt-in. A write whose shared-tier write fails still rejects (with
   * `WriteFailedError`, `queued: true`), but its invalidation is queued
   * (a `set` as a delete) and replayed in order once the tier answers,
   * before this instance trusts L1 again; until then this instance leaves L2
   * alone for the keys concerned. Bounded: past `maxQueued` invalidations,
   * or after `maxAttempts` failed replays of one, the queue collapses into
   * one `clear()` of the cache (it fails closed). The queue is in memory: it
   * is lost on `close()` or if the process dies. `true` takes every default.
   *
   * Prevents: a write that failed during an outage leaving the previous
   * value in Redis, served by every instance, until the key's TTL ends.
   *
   * @defaultValue off: the write rejects with `WriteFailedError`
   * (`queued: false`) and the caller retries
   */
  writeRecovery?:
    | boolean
    | {
        /** Invalidations held at most; one more collapses the queue into one `clear()`. @defaultValue 1000 */
        maxQueued?: number
        /** Failed replays of one invalidation before the queue collapses into one `clear()`. @defaultValue 10 */
        maxAttempts?: number
        /** How often a replay is tried while the queue is not empty. @defaultValue `'1s'` */
        retryEvery?: Duration
      }
  /**
   * How this cache's data becomes invalid, declared like an API: the events
   * that invalidate it, its tags and namespaces, or `ttlOnly: true`. Shown by
   * `describe()`.
   *
   * Prevents: a cache nobody can say how it is kept current (TTL-only
   * invalidation by accident). A cache without one gets a process warning at
   * creation.
   *
   * @defaultValue none
   */
  invalidation?: InvalidationPlan
  /**
   * `'observe'`: profile first, cache second. Reads run the factory every
   * time and touch no tier (as with no cache); writes and invalidations still
   * reach L2 and the bus, as deletes, so a fleet can switch over one instance
   * at a time. Meanwhile a ghost of the first tier (keys only: TTLs, tags, L1
   * capacity) predicts the hit rate the cache would have:
   * `stats().predictedHitRate`, and `advise()` says whether caching pays.
   *
   * Prevents: caching what costs less than the cache itself (a 5 ms query
   * behind a 3 ms Redis hop), found out only in production.
   *
   * @defaultValue `'normal'`
   */
  mode?: 'normal' | 'observe'
  /** Observe mode only. */
  observe?: {
    /**
     * The L2 round trip the advisor weighs, declared (e.g. `'3ms'`, what
     * production's network costs when the observing instance runs somewhere
     * closer to Redis).
     *
     * Prevents: advice computed from a round trip that is not production's.
     *
     * @defaultValue measured, behind the requests, with a probe that reads
     * no value (a few per second)
     */
    l2RoundTrip?: Duration
  }
}

/** The options of `set` and `setMany`. */
export interface SetOptions extends TierSkipOptions {
  /** Overrides the cache's `ttl` for this value. @defaultValue the cache's `ttl` */
  ttl?: Duration
  /** Overrides the cache's `grace` for this value. @defaultValue the cache's `grace` */
  grace?: Duration
  /**
   * Tags to write the value under; `invalidateTags` on any of them drops it
   * everywhere. Without `keepTags`, these are the entry's only tags. At most
   * 32, no control characters.
   *
   * @defaultValue none
   */
  tags?: readonly string[]
  /**
   * Keep the tags of the entry this value replaces (read from L1, else from
   * L2: one more round trip), joined with `tags`. A write between that read
   * and this one is not seen: pass the tags you mean when writers race on
   * one key.
   *
   * Prevents: an update that silently drops the entry out of the tags it was
   * filled under, so a later `invalidateTags` misses it.
   *
   * @defaultValue false: a `set` writes the entry whole, so a value set
   * without tags has none
   */
  keepTags?: boolean
}

/** Per-call overrides of the cache's read-path options, and the tags to store a produced value under. */
export interface GetOrSetOptions extends ReadPolicyOptions, TierSkipOptions {
  /**
   * Tags to store the produced value under (the factory may set its own with
   * `ctx.setTags`). At most 32, no control characters.
   *
   * @defaultValue none
   */
  tags?: readonly string[]
  /**
   * This caller's cancellation: when it aborts, this call rejects with
   * `signal.reason` (other callers of the key are unharmed), and once every
   * caller waiting on the load has aborted, the factory's `ctx.signal`
   * aborts too (not while the load holds the key's lease, nor for a
   * background refresh). `getOrSet` only.
   *
   * Prevents: a request that gave up (client gone, deadline passed) still
   * holding its slot until a slow factory returns.
   *
   * @defaultValue none
   */
  signal?: AbortSignal
}

/** Options of `getOrSetMany`: the read policy and tags (a batch has no tier flags and no per-caller `signal`). */
export type GetOrSetManyOptions = Omit<GetOrSetOptions, 'skipL1' | 'skipL2' | 'signal'>

/** Options of `get`, `getMany` and `delete`: the per-call tier flags. */
export interface ReadOptions extends TierSkipOptions {}
