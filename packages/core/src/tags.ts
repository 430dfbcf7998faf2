import { InvalidArgumentError, InvalidKeyError } from './errors.js'
import { MAX_KEY_LENGTH, MAX_NAMESPACE_DEPTH, NAMESPACE_SEPARATOR } from './keys.js'

export { MAX_NAMESPACE_DEPTH, NAMESPACE_SEPARATOR }

/**
 * Tags and namespaces.
 *
 * A tag is a label a value is written under; `invalidateTags` makes every
 * value written under it a miss, in O(1) (each tag has a version; an entry
 * records the versions of its tags and a read validates them).
 *
 * A namespace is a hierarchical scope (`company:42:orders`). A key in a
 * namespace is stored as `<namespace>U+001E<key>`, and its entry carries one
 * reserved tag per level of the namespace (`company`, `company:42`,
 * `company:42:orders`), so invalidating a namespace is invalidating one tag,
 * and reaches every deeper namespace too.
 */
const NAMESPACE_TAG_PREFIX = '\u001e'
const MAX_TAG_LENGTH = 256
/** Tags per entry: each is checked on every L2 read (one lookup in the script) and travels in every tags message. */
export const MAX_TAGS = 32
// Control characters are reserved: U+001E marks namespaces, U+001F separates tags in the Redis header.
const CONTROL = /[\u0000-\u001f]/

/** Tags one invalidateTags call may name (they travel in one message). */
export const MAX_TAGS_PER_INVALIDATION = 10_000

export function assertValidTags(cache: string, tags: unknown, key?: string, limit = MAX_TAGS): asserts tags is readonly string[] {
  if (!Array.isArray(tags)) throw new InvalidArgumentError('tags must be an array of strings', { cache, key })
  if (tags.length > limit) throw new InvalidArgumentError(`${tags.length} tags: at most ${limit}`, { cache, key })
  for (const tag of tags) {
    if (typeof tag !== 'string' || tag.length === 0 || tag.length > MAX_TAG_LENGTH || CONTROL.test(tag)) {
      throw new InvalidArgumentError(`tag ${JSON.stringify(tag)} is not valid: 1-${MAX_TAG_LENGTH} characters, no control characters`, { cache, key })
    }
  }
}

export function assertValidNamespace(cache: string, namespace: unknown): asserts namespace is string {
  if (typeof namespace !== 'string' || namespace.length === 0 || namespace.length > MAX_TAG_LENGTH || CONTROL.test(namespace)) {
    throw new InvalidKeyError(`namespace ${JSON.stringify(namespace)} is not valid: 1-${MAX_TAG_LENGTH} characters, no control characters`, {
      cache,
    })
  }
  if (namespace.startsWith(':') || namespace.endsWith(':') || namespace.includes('::')) {
    throw new InvalidKeyError(`namespace ${JSON.stringify(namespace)} has an empty level`, { cache })
  }
  if (namespace.split(':').length > MAX_NAMESPACE_DEPTH) {
    throw new InvalidKeyError(`namespace has more than ${MAX_NAMESPACE_DEPTH} levels`, { cache })
  }
  if (namespace.length >= MAX_KEY_LENGTH) {
    throw new InvalidKeyError(`namespace is ${namespace.length} characters: no room left for keys under ${MAX_KEY_LENGTH}`, { cache })
  }
}

export function namespacedKey(namespace: string, key: string): string {
  return `${namespace}${NAMESPACE_SEPARATOR}${key}`
}

/** The reserved tag that stands for a namespace. */
export function namespaceTag(namespace: string): string {
  return `${NAMESPACE_TAG_PREFIX}${namespace}`
}

/** An entry's own tags, without the namespace tags core adds to it. */
export function userTagsOf(tags: readonly string[] | undefined): readonly string[] {
  return tags === undefined ? [] : tags.filter((tag) => !tag.startsWith(NAMESPACE_TAG_PREFIX))
}

/** The tags an entry gets from the namespace its key is in: one per level. */
export function namespaceTagsOf(key: string): string[] {
  const end = key.indexOf(NAMESPACE_SEPARATOR)
  if (end < 0) return []
  const levels = key.slice(0, end).split(':')
  const tags: string[] = []
  for (let i = 1; i <= levels.length; i++) tags.push(namespaceTag(levels.slice(0, i).join(':')))
  return tags
}

/** The tags to write an entry under: the caller's, plus its key's namespace levels; undefined when none. */
export function entryTags(key: string, tags: readonly string[] | undefined): readonly string[] | undefined {
  const fromNamespace = namespaceTagsOf(key)
  if (fromNamespace.length === 0) return tags === undefined || tags.length === 0 ? undefined : tags
  // At most MAX_TAGS + MAX_NAMESPACE_DEPTH: both are checked where they come in.
  return tags === undefined ? fromNamespace : [...new Set([...tags, ...fromNamespace])]
}
