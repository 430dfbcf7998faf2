import { InvalidOptionError, MAX_TTL_MS, parseDuration, type Duration, type ErrorContext } from '@tiercache/core'

/**
 * What `cacheHeaders` and the route helpers are told about the headers they
 * write. Checked once (a route checks them when it is made, not per
 * request); a bad value is an `InvalidOptionError` naming the option.
 */
export interface HeaderOptions {
  /**
   * `'private'` (default): only the browser may keep the response. `'public'`:
   * shared caches (a CDN, a proxy) may keep it too; use it only for responses
   * that are the same for every user.
   */
  visibility?: 'private' | 'public'
  /**
   * How long a browser or CDN may reuse the response without asking us:
   * - `'revalidate'` (default): `no-cache`. Every reuse is revalidated with
   *   the ETag (a 304 while the entry is unchanged), so nobody outside the
   *   cache ever serves a value the cache has invalidated.
   * - `'remaining'`: `max-age` = the entry's remaining life in whole seconds.
   * - a duration (`'30s'`, or milliseconds as everywhere in tiercache): the
   *   remaining life, capped at this.
   *
   * With `'remaining'` or a duration, an invalidation cannot reach the copies
   * outside: they may serve the old value until their max-age ends. That is
   * the staleness you choose at that layer.
   */
  maxAge?: 'revalidate' | 'remaining' | Duration
  /**
   * Adds `stale-while-revalidate`: after max-age, a cache may serve the old
   * response this long while it revalidates behind. Needs `maxAge`
   * `'remaining'` or a duration (with `'revalidate'` nothing is served
   * without asking). More staleness outside the cache, by choice.
   */
  staleWhileRevalidate?: Duration
  /** Request header names the response depends on (`'accept-language'`, or a list), sent as `vary`. */
  vary?: string | readonly string[]
  /** Sends the entry's tags as `cache-tag` (Cloudflare's purge-by-tag header). Default false. */
  cacheTag?: boolean
  /** Sends the entry's tags as `surrogate-key` (Fastly's purge-by-key header). Default false. */
  surrogateKey?: boolean
  /** The wall clock, ms since the epoch (default `Date.now`): what the remaining life is counted from. For tests. */
  now?: () => number
}

export const HEADER_OPTION_NAMES = ['visibility', 'maxAge', 'staleWhileRevalidate', 'vary', 'cacheTag', 'surrogateKey', 'now'] as const

/** `HeaderOptions`, checked and reduced to what writing a response needs. */
export interface ResolvedHeaderOptions {
  readonly visibility: 'private' | 'public'
  /** `undefined`: revalidate (`no-cache`); otherwise max-age is the remaining life, capped at this many seconds. */
  readonly maxAgeCapSeconds: number | undefined
  readonly staleWhileRevalidateSeconds: number | undefined
  /** The `vary` value, or undefined. */
  readonly vary: string | undefined
  readonly cacheTag: boolean
  readonly surrogateKey: boolean
  readonly now: () => number
}

// RFC 9110 §5.1: a field name is a token.
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Rejects anything but an object of known option names: a misspelt option silently ignored would be a surprise in production. */
export function assertKnownNames(options: unknown, known: readonly string[], owner: string, context: ErrorContext): asserts options is Record<string, unknown> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidOptionError(`${owner} expects an options object, got ${options === null ? 'null' : typeof options}`, context)
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) throw new InvalidOptionError(`${owner}: unknown option "${name}" (known: ${known.join(', ')})`, context)
  }
}

/** A duration for an HTTP directive, in whole seconds (rounded down): at least one second, since HTTP cannot say less. */
function seconds(input: Duration, option: string, context: ErrorContext): number {
  const ms = parseDuration(input, option, context, MAX_TTL_MS)
  if (ms < 1_000) {
    const hint = typeof input === 'number' ? ` (numbers are milliseconds, as everywhere in tiercache: for ${input} seconds write '${input}s')` : ''
    throw new InvalidOptionError(`${option}: ${String(input)} is under 1 second, the smallest HTTP can express${hint}`, context)
  }
  return Math.floor(ms / 1_000)
}

function varyOf(input: unknown, context: ErrorContext): string | undefined {
  if (input === undefined) return undefined
  const list = typeof input === 'string' ? input.split(',') : Array.isArray(input) ? (input as unknown[]) : undefined
  if (list === undefined) throw new InvalidOptionError(`vary: expected a header name or a list of them, got ${typeof input}`, context)
  const names: string[] = []
  for (const raw of list) {
    const name = typeof raw === 'string' ? raw.trim() : raw
    if (typeof name !== 'string' || (name !== '*' && !FIELD_NAME.test(name))) {
      throw new InvalidOptionError(`vary: ${JSON.stringify(raw)} is not a header name`, context)
    }
    if (!names.some((n) => n.toLowerCase() === name.toLowerCase())) names.push(name)
  }
  if (names.length === 0) throw new InvalidOptionError('vary: the list is empty; leave the option out instead', context)
  return names.join(', ')
}

function flag(value: unknown, option: string, context: ErrorContext): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw new InvalidOptionError(`${option}: expected true or false, got ${JSON.stringify(value)}`, context)
  return value
}

/** Checks the header options (any other names in `options` are the caller's business) and resolves their defaults. */
export function resolveHeaderOptions(options: HeaderOptions, context: ErrorContext = {}): ResolvedHeaderOptions {
  const { visibility = 'private', maxAge = 'revalidate', staleWhileRevalidate, now = Date.now } = options
  if (visibility !== 'private' && visibility !== 'public') {
    throw new InvalidOptionError(`visibility: expected 'private' or 'public', got ${JSON.stringify(visibility)}`, context)
  }
  let maxAgeCapSeconds: number | undefined
  if (maxAge === 'remaining') maxAgeCapSeconds = Number.POSITIVE_INFINITY
  else if (maxAge !== 'revalidate') {
    if (typeof maxAge !== 'number' && typeof maxAge !== 'string') {
      throw new InvalidOptionError(`maxAge: expected 'revalidate', 'remaining' or a duration, got ${typeof maxAge}`, context)
    }
    maxAgeCapSeconds = seconds(maxAge, 'maxAge', context)
  }
  let staleWhileRevalidateSeconds: number | undefined
  if (staleWhileRevalidate !== undefined) {
    if (maxAgeCapSeconds === undefined) {
      throw new InvalidOptionError(
        "staleWhileRevalidate: needs maxAge 'remaining' or a duration; with maxAge 'revalidate' every reuse is revalidated, so nothing is served stale",
        context,
      )
    }
    staleWhileRevalidateSeconds = seconds(staleWhileRevalidate, 'staleWhileRevalidate', context)
  }
  if (typeof now !== 'function') throw new InvalidOptionError(`now: expected a function returning ms since the epoch, got ${typeof now}`, context)
  return {
    visibility,
    maxAgeCapSeconds,
    staleWhileRevalidateSeconds,
    vary: varyOf(options.vary, context),
    cacheTag: flag(options.cacheTag, 'cacheTag', context),
    surrogateKey: flag(options.surrogateKey, 'surrogateKey', context),
    now,
  }
}
