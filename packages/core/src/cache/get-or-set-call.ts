/**
 * One `getOrSet` call's arguments, checked before any I/O (so a bad option
 * fails fast and writes nothing), for the miss path (load.ts) and observe
 * mode (observe.ts) alike: the cache is open, the key and factory are valid,
 * and the per-call options parse (read policy, tags, tier flags, signal).
 */
import { InvalidArgumentError, InvalidOptionError } from '../errors.js'
import type { Factory } from '../factory.js'
import { assertValidKey } from '../keys.js'
import { resolvePolicy, type ReadPolicy } from '../policy.js'
import { assertValidTags } from '../tags.js'
import type { GetOrSetOptions } from './config.js'
import { assertCallOptions, GET_OR_SET_OPTIONS } from './call-options.js'
import { type TierSkips, tierSkipsOf } from './skips.js'

export interface GetOrSetCall {
  readonly policy: ReadPolicy
  readonly tags: readonly string[] | undefined
  readonly skips: TierSkips
  readonly signal: AbortSignal | undefined
}

export function checkGetOrSetCall<V>(
  cache: string,
  local: { assertOpen(key?: string): void },
  basePolicy: ReadPolicy,
  key: string,
  factory: Factory<V>,
  options: GetOrSetOptions | undefined,
): GetOrSetCall {
  local.assertOpen(key)
  assertValidKey(cache, key)
  if (typeof factory !== 'function') throw new InvalidArgumentError('getOrSet needs a factory function', { cache, key })
  return checkGetOrSetOptions(cache, basePolicy, key, options)
}

/**
 * The options alone: known names, valid values. The L1 hit path runs this
 * too whenever options are passed (`getOrSetOptionsError`), so a bad option
 * fails on a hit as it does on a miss.
 */
export function checkGetOrSetOptions(cache: string, basePolicy: ReadPolicy, key: string, options: GetOrSetOptions | undefined): GetOrSetCall {
  assertCallOptions('getOrSet', options, GET_OR_SET_OPTIONS, { cache, key })
  const policy = resolvePolicy(options, basePolicy, { cache, key })
  const tags = options?.tags
  if (tags !== undefined) assertValidTags(cache, tags, key)
  const skips = tierSkipsOf(options, { cache, key })
  const signal = options?.signal
  if (signal !== undefined) {
    if (!isAbortSignal(signal)) throw new InvalidOptionError('signal: must be an AbortSignal', { cache, key })
    signal.throwIfAborted()
  }
  return { policy, tags, skips, signal }
}

/** The error a hit must answer with for `options`, or undefined (never throws: the hit path returns a rejected promise). */
export function getOrSetOptionsError(cache: string, basePolicy: ReadPolicy, key: string, options: GetOrSetOptions): unknown {
  try {
    checkGetOrSetOptions(cache, basePolicy, key, options)
    return undefined
  } catch (error) {
    return error
  }
}

function isAbortSignal(value: unknown): value is AbortSignal {
  return typeof value === 'object' && value !== null && typeof (value as AbortSignal).addEventListener === 'function' && 'aborted' in value
}
