import { InvalidArgumentError, type CachedEntry } from '@tiercache/core'
import { formatHttpDate } from './http-date.js'
import { assertKnownNames, HEADER_OPTION_NAMES, resolveHeaderOptions, type HeaderOptions, type ResolvedHeaderOptions } from './options.js'

/**
 * The response headers for an entry; names lower-case, as Node stores them.
 * A type rather than an interface so it passes where Node takes
 * `OutgoingHttpHeaders` (`res.writeHead(200, headers)`).
 */
export type CacheHeaders = {
  'cache-control': string
  /** The entry's strong ETag, quoted (`"9f2c…"`): a hash of the value, the same on every instance. */
  etag: string
  /** The entry's creation time, as an HTTP date (whole seconds). */
  'last-modified': string
  vary?: string
  /** The entry's tags, comma-separated (with `cacheTag: true` and at least one tag). */
  'cache-tag'?: string
  /** The entry's tags, space-separated (with `surrogateKey: true` and at least one tag). */
  'surrogate-key'?: string
}

/** What the headers are computed from: the `CachedEntry` `getOrSetEntry` answers (its value is not read). */
export type EntryDescription = Pick<CachedEntry<unknown>, 'etag' | 'createdAt' | 'expiresAt' | 'tags'>

/**
 * `Cache-Control`, `ETag` and `Last-Modified` (and, if asked, `Vary`,
 * `Cache-Tag`, `Surrogate-Key`) for an entry from `getOrSetEntry`. See
 * `HeaderOptions` for the choices and their defaults: private, and
 * revalidated on every reuse.
 */
export function cacheHeaders(entry: EntryDescription, options: HeaderOptions = {}): CacheHeaders {
  assertKnownNames(options, HEADER_OPTION_NAMES, 'cacheHeaders', {})
  assertEntry(entry)
  return headersFor(entry, resolveHeaderOptions(options))
}

/** `cacheHeaders` with options already resolved (a route resolves them once). */
export function headersFor(entry: EntryDescription, options: ResolvedHeaderOptions): CacheHeaders {
  const headers: CacheHeaders = {
    'cache-control': cacheControlOf(entry, options),
    etag: entry.etag,
    'last-modified': formatHttpDate(entry.createdAt),
  }
  if (options.vary !== undefined) headers.vary = options.vary
  if (entry.tags.length > 0) {
    if (options.cacheTag) headers['cache-tag'] = entry.tags.map(tagForHeader).join(',')
    if (options.surrogateKey) headers['surrogate-key'] = entry.tags.map(tagForHeader).join(' ')
  }
  return headers
}

function cacheControlOf(entry: EntryDescription, options: ResolvedHeaderOptions): string {
  if (options.maxAgeCapSeconds === undefined) return `${options.visibility}, no-cache`
  // Rounded down: an outside cache must not keep a response past the entry's own life.
  const remaining = Math.max(0, Math.floor((entry.expiresAt - options.now()) / 1_000))
  const maxAge = Math.min(remaining, options.maxAgeCapSeconds)
  const swr = options.staleWhileRevalidateSeconds === undefined ? '' : `, stale-while-revalidate=${options.staleWhileRevalidateSeconds}`
  return `${options.visibility}, max-age=${maxAge}${swr}`
}

// Visible ASCII without the comma (Cache-Tag's separator); the space (Surrogate-Key's) is outside it already.
const HEADER_SAFE_TAG = /^[\x21-\x2b\x2d-\x7e]+$/

/**
 * How a tag is written in `cache-tag` and `surrogate-key`: as is when it is
 * visible ASCII without commas or spaces (the separators), otherwise
 * percent-encoded (`encodeURIComponent`). Purge a CDN with this form of
 * the tag.
 */
export function tagForHeader(tag: string): string {
  return HEADER_SAFE_TAG.test(tag) ? tag : encodeURIComponent(tag)
}

function assertEntry(entry: unknown): asserts entry is EntryDescription {
  const e = entry as Partial<EntryDescription> | null | undefined
  if (
    typeof e !== 'object' ||
    e === null ||
    typeof e.etag !== 'string' ||
    !Number.isFinite(e.createdAt) ||
    !Number.isFinite(e.expiresAt) ||
    !Array.isArray(e.tags)
  ) {
    throw new InvalidArgumentError('cacheHeaders: entry must be what getOrSetEntry answers ({ value, etag, createdAt, expiresAt, tags })')
  }
}
