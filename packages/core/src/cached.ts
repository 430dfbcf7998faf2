import type { Duration } from './duration.js'
import type { Cache } from './cache/cache.js'

export interface CachedOptions<A extends unknown[]> {
  key: (...args: A) => string
  ttl?: Duration
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
