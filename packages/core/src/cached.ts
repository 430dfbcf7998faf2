import type { Duration } from './duration.js'
import type { Cache } from './cache/cache.js'

/** The options of the {@link cached} decorator. */
export interface CachedOptions<A extends unknown[]> {
  /**
   * Builds the cache key from the method's arguments. Required. Every
   * argument that changes the result must be in the key.
   *
   * Prevents: two calls with different arguments sharing one cached result.
   */
  key: (...args: A) => string
  /** How long a result is fresh. @defaultValue the cache's `ttl` */
  ttl?: Duration
  /** Tags to store each result under, or a function of the arguments returning them. @defaultValue none */
  tags?: readonly string[] | ((...args: A) => readonly string[])
}

/**
 * A standard (TypeScript 5) method decorator that memoizes the method
 * through `cache.getOrSet`, with its single-flight and leases:
 *
 *   class Users { @cached(users, { key: (id) => `user:${id}` }) async load(id: number) { … } }
 */
export function cached<V, A extends unknown[]>(cache: Cache<V>, options: CachedOptions<A>) {
  return function decorate<This>(
    method: (this: This, ...args: A) => Promise<V> | V,
    _context: ClassMethodDecoratorContext<This, (this: This, ...args: A) => Promise<V> | V>,
  ): (this: This, ...args: A) => Promise<V> {
    const { key, tags, ttl } = options
    return function (this: This, ...args: A): Promise<V> {
      return cache.getOrSet(key(...args), () => method.apply(this, args), {
        ttl,
        tags: typeof tags === 'function' ? tags(...args) : tags,
      })
    }
  }
}
