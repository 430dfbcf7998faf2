/**
 * Per-call tier flags, `skipL1` and `skipL2`: one call reads and stores past
 * L1 or past L2. They choose where a value is read from or stored, never
 * which invalidations happen: a `set` that skips L2 still deletes the L2
 * copy and publishes the invalidation (or every other instance would read
 * the old L2 value back), and a `delete` always removes the key everywhere.
 */
import { InvalidOptionError, type ErrorContext } from '../errors.js'

/** Per-call tier flags, on `get`, `getOrSet`, `getMany`, `has`, `set` and `delete`. */
export interface TierSkipOptions {
  /**
   * This call neither reads nor stores L1 (this instance's memory). A
   * `getOrSet` with a flag neither joins a load in flight nor can be joined.
   *
   * Prevents: one read that must see L2's current value (an admin screen, a
   * read right after an out-of-band change) being answered from memory.
   *
   * @defaultValue false
   */
  skipL1?: boolean
  /**
   * This call neither reads nor stores L2 (Redis); invalidations still reach
   * it: a `set` that skips L2 still deletes the L2 copy and tells every
   * instance, or they would read the old value back from L2.
   *
   * Prevents: a value that must stay on this instance (per-process state,
   * or too large to share) being written to Redis.
   *
   * @defaultValue false
   */
  skipL2?: boolean
}

export interface TierSkips {
  readonly skipL1: boolean
  readonly skipL2: boolean
}

export const NO_SKIPS: TierSkips = Object.freeze({ skipL1: false, skipL2: false })

/** The flags of one call's options, checked: anything but a boolean (or absent) is an `InvalidOptionError`. */
export function tierSkipsOf(options: TierSkipOptions | undefined, context: ErrorContext): TierSkips {
  if (options === undefined || options === null) return NO_SKIPS
  const { skipL1, skipL2 } = options
  if (skipL1 === undefined && skipL2 === undefined) return NO_SKIPS
  for (const [name, value] of [
    ['skipL1', skipL1],
    ['skipL2', skipL2],
  ] as const) {
    if (value !== undefined && typeof value !== 'boolean') {
      throw new InvalidOptionError(`${name}: must be true or false, got ${JSON.stringify(value)}`, context)
    }
  }
  return { skipL1: skipL1 === true, skipL2: skipL2 === true }
}
