import { InvalidKeyError, InvalidOptionError } from './errors.js'

/**
 * Longest key accepted, in UTF-16 code units. A cache key is an identifier,
 * not a payload; a multi-kilobyte key is almost always a bug (a serialized
 * object used as a key), and it would be repeated in every message on the bus.
 */
export const MAX_KEY_LENGTH = 1024

/** Separates a namespace from its keys: `<namespace>U+001E<key>` (see tags.ts, which builds them). */
export const NAMESPACE_SEPARATOR = '\u001e'
/** Namespace levels: each level is a tag of every entry under it. */
export const MAX_NAMESPACE_DEPTH = 16

/** Throws `InvalidKeyError` unless `key` is a non-empty string within `MAX_KEY_LENGTH`. */
export function assertValidKey(cache: string, key: unknown): asserts key is string {
  if (typeof key !== 'string') {
    throw new InvalidKeyError(`key must be a string, got ${key === null ? 'null' : typeof key}`, { cache })
  }
  if (key.length === 0) throw new InvalidKeyError('key must not be empty', { cache, key })
  if (key.length > MAX_KEY_LENGTH) {
    throw new InvalidKeyError(`key is ${key.length} characters, over the limit of ${MAX_KEY_LENGTH}`, { cache, key })
  }
  const separator = key.indexOf(NAMESPACE_SEPARATOR)
  if (separator >= 0) {
    // `<namespace>U+001E<key>`, as cache.namespace() and key templates build it.
    const namespace = key.slice(0, separator)
    if (
      separator === 0 ||
      separator === key.length - 1 ||
      key.indexOf(NAMESPACE_SEPARATOR, separator + 1) >= 0 ||
      !VALID_NAMESPACE.test(namespace) ||
      namespace.split(':').length > MAX_NAMESPACE_DEPTH
    ) {
      throw new InvalidKeyError('key contains U+001E, which is reserved to separate a namespace from its keys; use cache.namespace()', {
        cache,
        key,
      })
    }
  }
}

/** Namespace levels are separated by ':'; no level is empty and no control character appears. */
const VALID_NAMESPACE = /^[^\u0000-\u001f:]+(?::[^\u0000-\u001f:]+)*$/

/**
 * Cache names become part of shared-tier keys and bus messages, so they are
 * restricted to characters that cannot collide with a key separator: two
 * caches named "a" and "a:b" could otherwise read each other's entries.
 */
const CACHE_NAME_PATTERN = /^[A-Za-z0-9_.\-/]{1,100}$/

export function assertValidCacheName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !CACHE_NAME_PATTERN.test(name)) {
    throw new InvalidOptionError(`name: ${JSON.stringify(name)} is not a valid cache name (1-100 characters from A-Z a-z 0-9 _ . - /)`)
  }
}
