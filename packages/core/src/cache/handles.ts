/**
 * What is built on the public calls, and nothing else: namespace handles,
 * typed key templates, `wrap`, `invalidateOn` and `warm`. Each takes the
 * cache's public surface (`CacheCalls`), so none of it reaches into the
 * read or write path.
 */
import type { Duration } from '../duration.js'
import { InvalidArgumentError, InvalidKeyError, InvalidOptionError, TierCacheError, errorMessageOf } from '../errors.js'
import type { Factory } from '../factory.js'
import { fillTemplate, parseTemplate, type KeyParams } from '../key-template.js'
import { assertValidKey } from '../keys.js'
import type { ReadPolicyOptions } from '../policy.js'
import { assertValidNamespace, NAMESPACE_SEPARATOR, namespacedKey } from '../tags.js'
import type { BatchLoader } from './batch.js'
import type { GetOrSetManyOptions, GetOrSetOptions, ReadOptions, SetOptions } from './config.js'
import type { CachedEntry } from './entry.js'
import type { Reporter } from './report.js'

/** The per-key calls a cache and a namespace handle share. */
interface KeyCalls<V> {
  readonly name: string
  get(key: string, options?: ReadOptions): Promise<V | undefined>
  getOrSet(key: string, factory: Factory<V>, options?: GetOrSetOptions): Promise<V>
  getMany(keys: readonly string[], options?: ReadOptions): Promise<Array<V | undefined>>
  getOrSetMany(keys: readonly string[], loader: BatchLoader<V>, options?: GetOrSetManyOptions): Promise<V[]>
  getOrSetEntry(key: string, factory: Factory<V>, options?: GetOrSetOptions): Promise<CachedEntry<V>>
  has(key: string, options?: ReadOptions): Promise<boolean>
  set(key: string, value: V, options?: SetOptions): Promise<void>
  delete(key: string, options?: ReadOptions): Promise<void>
  deleteMany(keys: readonly string[], options?: ReadOptions): Promise<void>
}

/** The calls handles are built on: the cache's public read and write methods. */
export interface CacheCalls<V> extends KeyCalls<V> {
  invalidateTags(tags: readonly string[]): Promise<void>
  invalidateNamespace(namespace: string): Promise<void>
}

/** A cache scoped to a namespace; see `Cache.namespace`. */
export interface CacheNamespace<V> extends KeyCalls<V> {
  /** Drops every entry under this namespace (and deeper ones), on every instance. */
  invalidate(): Promise<void>
  namespace(sub: string): CacheNamespace<V>
}

/** A key builder; see `Cache.key`. */
export interface KeyTemplate<T extends string, S extends string> {
  (params: KeyParams<T>): string
  readonly template: T
  readonly scope: S | undefined
  /** Drops every key of the scope these parameters name (all pages, all filters), on every instance. */
  invalidate(params: KeyParams<S>): Promise<void>
}

/** One entry for `warm`: a `[key, value]` pair, or an object with its own TTL. */
export type WarmEntry<V> = readonly [string, V] | { key: string; value: V; ttl?: Duration }
export type WarmSource<V> = Iterable<WarmEntry<V>> | AsyncIterable<WarmEntry<V>>

export function namespaceHandle<V>(cache: CacheCalls<V>, namespace: string): CacheNamespace<V> {
  assertValidNamespace(cache.name, namespace)
  const scoped = (key: string): string => {
    assertValidKey(cache.name, key)
    if (key.includes(NAMESPACE_SEPARATOR)) {
      throw new InvalidKeyError('a key in a namespace cannot itself be namespaced; nest with .namespace()', { cache: cache.name, key })
    }
    return namespacedKey(namespace, key)
  }
  return {
    name: namespace,
    // async: a bad key rejects like any other call, never throws synchronously.
    get: async (key, options) => cache.get(scoped(key), options),
    getOrSet: async (key, factory, options) => cache.getOrSet(scoped(key), factory, options),
    getMany: async (keys, options) => cache.getMany(keys.map(scoped), options),
    getOrSetMany: async (keys, loader, options) => {
      const scopedKeys = keys.map(scoped)
      const back = new Map(scopedKeys.map((full, i) => [full, keys[i]!]))
      return cache.getOrSetMany(
        scopedKeys,
        async (missing) => {
          const loaded = await loader(missing.map((full) => back.get(full)!))
          if (loaded instanceof Map) return new Map(missing.map((full) => [full, loaded.get(back.get(full)!) as V]))
          return loaded
        },
        options,
      )
    },
    getOrSetEntry: async (key, factory, options) => cache.getOrSetEntry(scoped(key), factory, options),
    has: async (key, options) => cache.has(scoped(key), options),
    set: async (key, value, options) => cache.set(scoped(key), value, options),
    delete: async (key, options) => cache.delete(scoped(key), options),
    deleteMany: async (keys, options) => cache.deleteMany(Array.isArray(keys) ? keys.map(scoped) : keys, options),
    invalidate: () => cache.invalidateNamespace(namespace),
    namespace: (sub) => namespaceHandle(cache, `${namespace}:${sub}`),
  }
}

/** See `Cache.key`. `seen` collects the templates `describe()` lists. */
export function keyTemplate<V, T extends string, S extends string = never>(
  cache: CacheCalls<V>,
  template: T,
  options: { scope?: S },
  seen: Array<{ template: string; scope: string | undefined }>,
): KeyTemplate<T, S> {
  const full = parseTemplate(template, 'key template', cache.name)
  const scope = options.scope === undefined ? undefined : parseTemplate(options.scope, 'scope', cache.name)
  if (scope?.names.some((name) => !full.names.includes(name))) {
    throw new InvalidArgumentError(`scope "${scope.source}" uses a parameter that key "${template}" does not have`, { cache: cache.name })
  }
  if (!seen.some((k) => k.template === template && k.scope === options.scope)) seen.push({ template, scope: options.scope })
  const build = ((params: KeyParams<T>): string => {
    const key = fillTemplate(full, params, cache.name)
    if (scope === undefined) return key
    const pick = Object.fromEntries(scope.names.map((name) => [name, (params as Record<string, unknown>)[name]]))
    const namespace = fillTemplate(scope, pick, cache.name)
    assertValidNamespace(cache.name, namespace) // a key its scope could not invalidate must not be written
    const local = key.startsWith(`${namespace}:`) ? key.slice(namespace.length + 1) : key
    return namespacedKey(namespace, local)
  }) as KeyTemplate<T, S>
  Object.defineProperties(build, {
    template: { value: template },
    scope: { value: options.scope },
    invalidate: {
      value: async (params: KeyParams<S>) => {
        if (scope === undefined) throw new InvalidArgumentError(`key "${template}" has no scope to invalidate`, { cache: cache.name })
        await cache.invalidateNamespace(fillTemplate(scope, params, cache.name))
      },
    },
  })
  return build
}

/** See `Cache.wrap`. */
export function wrapFunction<V, A extends unknown[]>(
  cache: CacheCalls<V>,
  fn: (...args: A) => V | Promise<V>,
  options: { key: (...args: A) => string; tags?: readonly string[] | ((...args: A) => readonly string[]) } & ReadPolicyOptions,
): (...args: A) => Promise<V> {
  if (typeof fn !== 'function' || typeof options?.key !== 'function') {
    throw new InvalidArgumentError('wrap needs a function and a key(...args) function', { cache: cache.name })
  }
  const { key, tags, ...policy } = options
  // One options object for every call when the tags are fixed: the hit path checks options whenever they are passed.
  const fixed = typeof tags === 'function' ? undefined : { ...policy, tags }
  // async: a key() or tags() that throws rejects the call like any other bad input.
  return async (...args: A) =>
    cache.getOrSet(key(...args), () => fn(...args), fixed ?? { ...policy, tags: (tags as (...args: A) => readonly string[])(...args) })
}

/** See `Cache.invalidateOn`. Failures go to the reporter (`onError`). */
export function wireInvalidation<V, E>(
  cache: CacheCalls<V>,
  reporter: Reporter,
  emitter: { on(event: string, listener: (payload: E) => void): unknown; off?(event: string, listener: (payload: E) => void): unknown },
  event: string,
  map: (payload: E) => { keys?: readonly string[]; tags?: readonly string[]; namespaces?: readonly string[] },
): () => void {
  const listener = (payload: E): void => {
    let plan: { keys?: readonly string[]; tags?: readonly string[]; namespaces?: readonly string[] }
    try {
      plan = map(payload)
      const arrays = plan === null || typeof plan !== 'object' ? [] : [plan.keys, plan.tags, plan.namespaces]
      if (arrays.length === 0 || arrays.some((list) => list !== undefined && !Array.isArray(list))) {
        throw new Error('the mapper must return { keys?, tags?, namespaces? } with arrays')
      }
    } catch (error) {
      // A listener must not throw into the emitter's caller: report instead.
      reporter.report(new InvalidArgumentError(`invalidateOn("${event}"): ${errorMessageOf(error)}`, { cache: cache.name, cause: error }))
      return
    }
    const work = [
      ...(plan.keys ?? []).map((key) => cache.delete(key)),
      ...(plan.tags !== undefined && plan.tags.length > 0 ? [cache.invalidateTags(plan.tags)] : []),
      ...(plan.namespaces ?? []).map((namespace) => cache.invalidateNamespace(namespace)),
    ]
    for (const done of work) {
      done.catch((error: unknown) => reporter.report(error instanceof TierCacheError ? error : reporter.tierError('invalidate', undefined, error)))
    }
  }
  emitter.on(event, listener)
  return () => {
    emitter.off?.(event, listener)
  }
}

/** See `Cache.warm`. */
export async function warmFrom<V>(
  cache: CacheCalls<V>,
  source: WarmSource<V> | (() => WarmSource<V> | Promise<WarmSource<V>>),
  options: { concurrency?: number },
): Promise<number> {
  const concurrency = options.concurrency ?? 32
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new InvalidOptionError(`warm: concurrency must be a positive integer, got ${String(options.concurrency)}`, { cache: cache.name })
  }
  const entries = typeof source === 'function' ? await source() : source
  if (entries === null || typeof entries !== 'object' || !(Symbol.iterator in entries || Symbol.asyncIterator in entries)) {
    throw new InvalidArgumentError('warm: expected entries, an (async) iterable of them, or a function returning one', { cache: cache.name })
  }
  const running = new Set<Promise<void>>()
  let written = 0
  let failure: { error: unknown } | undefined
  for await (const item of entries as AsyncIterable<WarmEntry<V>>) {
    if (failure !== undefined) break
    if (item === null || typeof item !== 'object') {
      failure = { error: new InvalidArgumentError('warm: each entry is [key, value] or { key, value, ttl? }', { cache: cache.name }) }
      break
    }
    const { key, value, ttl } = isPair(item) ? { key: item[0], value: item[1], ttl: undefined } : item
    const write: Promise<void> = cache.set(key, value, ttl === undefined ? undefined : { ttl }).then(
      () => {
        written++
      },
      (error: unknown) => {
        failure ??= { error }
      },
    )
    running.add(write)
    void write.finally(() => running.delete(write))
    if (running.size >= concurrency) await Promise.race(running)
  }
  await Promise.all(running)
  if (failure !== undefined) throw failure.error
  return written
}

function isPair<V>(item: WarmEntry<V>): item is readonly [string, V] {
  return Array.isArray(item)
}
