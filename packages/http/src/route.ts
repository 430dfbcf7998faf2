import {
  InvalidArgumentError,
  InvalidOptionError,
  MAX_TTL_MS,
  parseDuration,
  type CachedEntry,
  type Duration,
  type ErrorContext,
  type Factory,
  type FactoryContext,
  type GetOrSetOptions,
} from '@tiercache/core'
import { notModified, type RequestHeaders } from './conditional.js'
import { headersFor, type CacheHeaders } from './headers.js'
import { assertKnownNames, HEADER_OPTION_NAMES, resolveHeaderOptions, type HeaderOptions } from './options.js'

/** What a route reads from: a `Cache`, a namespace handle, or anything else with `getOrSetEntry`. */
export interface EntrySource<V> {
  readonly name?: string
  getOrSetEntry(key: string, factory: Factory<V>, options?: GetOrSetOptions): Promise<CachedEntry<V>>
}

/** What any route needs of a request: its method and headers. */
export interface HttpRequestLike {
  readonly method: string
  readonly headers: RequestHeaders
}

/** A route's options: where its value comes from, how it is cached, and the header options. */
export interface RouteOptions<Req, V> extends HeaderOptions {
  /** The cache key for a request (e.g. `(req) => \`user:${req.params.id}\``). */
  key: (req: Req) => string
  /** Produces the value on a miss; `ctx` is the factory context of `getOrSetEntry` (setTtl, setTags, signal, …). */
  load: (req: Req, ctx: FactoryContext<V>) => V | Promise<V>
  /** The entry's TTL (otherwise the cache's). */
  ttl?: Duration
  /** Tags to store the value under, fixed or per request. */
  tags?: readonly string[] | ((req: Req) => readonly string[])
  /** Any other `getOrSetEntry` options, fixed or per request. `ttl` and `tags` above take precedence over the same names here. */
  options?: GetOrSetOptions | ((req: Req) => GetOrSetOptions)
}

/** A route's answer before a framework writes it: 200 with the value, 304 without a body, or 404 for a cached miss. */
export type RouteAnswer<V> =
  | { readonly status: 200; readonly headers: CacheHeaders; readonly body: V }
  | { readonly status: 304; readonly headers: Omit<CacheHeaders, 'last-modified'> }
  | { readonly status: 404; readonly headers: { readonly 'cache-control': 'no-store' } }

const ROUTE_OPTION_NAMES = ['key', 'load', 'ttl', 'tags', 'options', ...HEADER_OPTION_NAMES]

const NOT_FOUND = { status: 404, headers: { 'cache-control': 'no-store' } } as const

/**
 * Checks a route's options once, when the route is made, and returns what
 * answers one request: the entry from the cache, then 304 when the client's
 * copy is current (GET and HEAD only), else 200 with the value.
 *
 * A `load` that returns `null` or `undefined` is a miss core caches as
 * such (for `negativeTtl`): answered 404, `no-store`, so nothing outside
 * keeps the absence past our own cache.
 */
export function compileRoute<Req, V>(
  owner: string,
  cache: EntrySource<V>,
  options: RouteOptions<Req, V>,
): (req: Req, method: string, headers: RequestHeaders) => Promise<RouteAnswer<V>> {
  if (typeof cache !== 'object' || cache === null || typeof cache.getOrSetEntry !== 'function') {
    throw new InvalidArgumentError(`${owner}: the first argument must be a Cache or a namespace handle (anything with getOrSetEntry)`)
  }
  const context: ErrorContext = typeof cache.name === 'string' ? { cache: cache.name } : {}
  assertKnownNames(options, ROUTE_OPTION_NAMES, owner, context)
  const { key, load, ttl, tags, options: callOptions } = options
  if (typeof key !== 'function') throw new InvalidOptionError(`${owner}: key must be a function (req) => string, got ${typeof key}`, context)
  if (typeof load !== 'function') throw new InvalidOptionError(`${owner}: load must be a function (req, ctx) => value, got ${typeof load}`, context)
  if (ttl !== undefined) parseDuration(ttl, 'ttl', context, MAX_TTL_MS)
  if (tags !== undefined && typeof tags !== 'function' && !Array.isArray(tags)) {
    throw new InvalidOptionError(`${owner}: tags must be a list of strings or a function (req) => list, got ${typeof tags}`, context)
  }
  if (callOptions !== undefined && typeof callOptions !== 'function' && (typeof callOptions !== 'object' || callOptions === null)) {
    throw new InvalidOptionError(`${owner}: options must be getOrSetEntry options or a function (req) => options, got ${typeof callOptions}`, context)
  }
  const headerOptions = resolveHeaderOptions(options, context)
  const optionsFor = callOptionsOf(ttl, tags, callOptions)

  return async (req, method, requestHeaders) => {
    const entry = await cache.getOrSetEntry(key(req), (ctx) => load(req, ctx), optionsFor(req))
    if (entry.value === null || entry.value === undefined) return NOT_FOUND
    const headers = headersFor(entry, headerOptions)
    if ((method === 'GET' || method === 'HEAD') && notModified(requestHeaders, entry)) {
      // RFC 9110 §15.4.5: a 304 carries what guides the caches (Cache-Control, ETag, Vary); Last-Modified is left out since the ETag is there.
      const { 'last-modified': _, ...unchanged } = headers
      return { status: 304, headers: unchanged }
    }
    return { status: 200, headers, body: entry.value }
  }
}

/** The `getOrSetEntry` options for a request: built once when nothing in them depends on the request. */
function callOptionsOf<Req>(
  ttl: Duration | undefined,
  tags: RouteOptions<Req, unknown>['tags'],
  options: RouteOptions<Req, unknown>['options'],
): (req: Req) => GetOrSetOptions | undefined {
  const merge = (base: GetOrSetOptions | undefined, tagList: readonly string[] | undefined): GetOrSetOptions | undefined => {
    if (ttl === undefined && tagList === undefined) return base
    const merged: GetOrSetOptions = { ...base }
    if (ttl !== undefined) merged.ttl = ttl
    if (tagList !== undefined) merged.tags = tagList
    return merged
  }
  if (typeof tags !== 'function' && typeof options !== 'function') {
    const fixed = merge(options, tags)
    return () => fixed
  }
  return (req) => merge(typeof options === 'function' ? options(req) : options, typeof tags === 'function' ? tags(req) : tags)
}
