/**
 * The option names each per-call method accepts. A misspelt option
 * (`{ tll: '5m' }`) is an `InvalidOptionError` naming it, whenever an
 * options object is passed — on an L1 hit too, where nothing else looks at
 * the options: a typo that only fails on a miss fails in production first.
 */
import { InvalidOptionError, type ErrorContext } from '../errors.js'
import { READ_POLICY_OPTIONS } from '../policy.js'

const TIER_FLAGS = ['skipL1', 'skipL2'] as const

/** `getOrSet`: the read policy, tags, tier flags and the caller's signal. */
export const GET_OR_SET_OPTIONS: ReadonlySet<string> = new Set([...READ_POLICY_OPTIONS, 'tags', ...TIER_FLAGS, 'signal'])
/** `getOrSetMany`: the read policy and tags (no tier flags, no `signal`: a batch reads and stores every tier, for every caller). */
export const GET_OR_SET_MANY_OPTIONS: ReadonlySet<string> = new Set([...READ_POLICY_OPTIONS, 'tags'])
/** `set` and `setMany`: the value's TTL and grace, its tags (and whether to keep the old ones), and the tier flags. */
export const SET_OPTIONS: ReadonlySet<string> = new Set(['ttl', 'grace', 'tags', 'keepTags', ...TIER_FLAGS])
/** `get`, `getMany`, `has`, `delete`, `deleteMany`: the tier flags. */
export const READ_OPTIONS: ReadonlySet<string> = new Set(TIER_FLAGS)

/**
 * Rejects an options object with a name `method` does not know (absent
 * options pass). A `for…in` over the object and a Set lookup per name, no
 * allocation: it runs on the L1 hit path whenever options are passed.
 */
export function assertCallOptions(method: string, options: unknown, known: ReadonlySet<string>, context: ErrorContext): void {
  if (options === undefined) return
  if (options === null || typeof options !== 'object') throw new InvalidOptionError(`${method}: options must be an object`, context)
  for (const name in options) {
    if (!known.has(name) && Object.hasOwn(options, name)) {
      throw new InvalidOptionError(`${method}: unknown option "${name}" (known: ${[...known].join(', ')})`, context)
    }
  }
}
