import type { CachedEntry } from '@tiercache/core'
import { parseHttpDate } from './http-date.js'

/**
 * A request's headers, in either shape a server hands them over:
 * - Node's `IncomingHttpHeaders` (`req.headers` in Express, Fastify and
 *   `node:http`): lower-case names, each value a string or a list;
 * - anything with `get(name)`: Fetch's `Headers` (case-insensitive), or a
 *   `Map` keyed by lower-case names.
 */
export type RequestHeaders = { readonly [name: string]: string | readonly string[] | undefined } | { get(name: string): string | null | undefined }

/** One header, its repeated lines joined as HTTP joins them (`, `); `undefined` when absent. */
export function headerOf(headers: RequestHeaders, name: string): string | readonly string[] | undefined {
  const get = (headers as { get?: unknown }).get
  if (typeof get === 'function') return (get.call(headers, name) as string | null | undefined) ?? undefined
  return (headers as Record<string, string | readonly string[] | undefined>)[name]
}

/**
 * Whether a GET or HEAD request may be answered 304 Not Modified for this
 * entry (RFC 9110 §13.2.2): the client already holds this representation.
 *
 * - `If-None-Match` (a list of entity-tags, or `*`): true when any tag
 *   matches the entry's ETag by weak comparison (`W/"x"` matches `"x"`), as
 *   RFC 9110 §13.1.2 requires for this header; `*` matches any entry.
 * - `If-Modified-Since`, only when `If-None-Match` is absent: true when the
 *   entry was created at or before that date, compared in whole seconds
 *   (`Last-Modified`'s precision). An unreadable date, or more than one, is
 *   ignored, as the RFC says.
 *
 * For other methods these headers mean something else (a failed
 * precondition, 412): do not call this for them.
 */
export function notModified(requestHeaders: RequestHeaders, entry: Pick<CachedEntry<unknown>, 'etag' | 'createdAt'>): boolean {
  const ifNoneMatch = headerOf(requestHeaders, 'if-none-match')
  if (ifNoneMatch !== undefined) {
    const field = typeof ifNoneMatch === 'string' ? ifNoneMatch : ifNoneMatch.join(', ')
    return field.trim() === '*' || listMatches(field, opaqueTagOf(entry.etag))
  }
  const ifModifiedSince = headerOf(requestHeaders, 'if-modified-since')
  const date = typeof ifModifiedSince === 'string' ? ifModifiedSince : ifModifiedSince?.length === 1 ? ifModifiedSince[0] : undefined
  if (date === undefined) return false
  const since = parseHttpDate(date)
  return since !== undefined && Math.floor(entry.createdAt / 1_000) * 1_000 <= since
}

/** An entity-tag without its weakness mark: what weak comparison compares. */
function opaqueTagOf(etag: string): string {
  return etag.startsWith('W/') ? etag.slice(2) : etag
}

/**
 * Whether any entity-tag in an `If-None-Match` list has this opaque tag.
 * Scanned rather than split on commas: a quoted tag may itself contain a
 * comma (RFC 9110 `etagc` allows it). A malformed member is skipped; the
 * members around it still count.
 */
function listMatches(field: string, opaque: string): boolean {
  let i = 0
  while (i < field.length) {
    const c = field[i]
    if (c === ' ' || c === '\t' || c === ',') {
      i++
      continue
    }
    const start = field.startsWith('W/', i) ? i + 2 : i
    if (field[start] === '"') {
      const end = field.indexOf('"', start + 1)
      if (end < 0) return false
      if (field.slice(start, end + 1) === opaque) return true
      i = end + 1
    }
    // A member that is not a quoted tag, or junk after one, is skipped up to the next comma.
    const comma = field.indexOf(',', i)
    if (comma < 0) return false
    i = comma + 1
  }
  return false
}
