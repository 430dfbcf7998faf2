/**
 * One `getOrSet` call's arguments, checked before any I/O (so a bad option
 * fails fast and writes nothing), for the miss path (load.ts) and observe
 * mode (observe.ts) alike: the cache is open, the key and factory are valid,
 * and the per-call options parse (read policy, tags, tier flags, signal).
 */
import { InvalidArgumentError, InvalidOptionError } from '../errors.js'
import type { Factory } from '../factory.js'
import { assertValidKey } from '../keys.js'
import { READ_POLICY_OPTIONS, resolvePolicy, type ReadPolicy } from '../policy.js'
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
  if (signal !== undefined) checkSignal(signal, { cache, key })
  return { policy, tags, skips, signal }
}

/**
 * The error a hit must answer with for `options`, or undefined (never
 * throws: the hit path returns a rejected promise). The same checks as the
 * miss path, made cheap for the hit path: a read-policy value (`'5m'`,
 * `0.8`) that `resolvePolicy` accepted once is remembered per option name,
 * so an inline `{ ttl: '5m' }` — a new object on every call — costs a name
 * check and one Set lookup, not a parse (bench/options-hit.mjs: ~600 ns a
 * hit with a parse, measured before this). A value not seen yet, or
 * `softTimeout` with `hardTimeout` (checked against each other), takes the
 * full check. Tags, tier flags and the signal are checked every time.
 */
export function getOrSetOptionsError(cache: string, basePolicy: ReadPolicy, key: string, options: GetOrSetOptions): unknown {
  try {
    if (!checkedQuickly(cache, key, options)) {
      checkGetOrSetOptions(cache, basePolicy, key, options)
      rememberPolicyValues(options)
    }
    return undefined
  } catch (error) {
    return error
  }
}

/** Read-policy values `resolvePolicy` accepted, per option name (primitives only; bounded, forgotten when full). */
const acceptedPolicyValues = new Map<string, Set<unknown>>()
const MAX_REMEMBERED_VALUES = 256
const POLICY_OPTION_NAMES: ReadonlySet<string> = new Set(READ_POLICY_OPTIONS)

/**
 * One pass over the names present (usually one or two): true when every
 * option checked out here; false when the full check must run (an unknown
 * name, a policy value not accepted before, both timeouts). Throws for bad
 * tags, tier flags or signal.
 */
function checkedQuickly(cache: string, key: string, options: GetOrSetOptions): boolean {
  if (options === null || typeof options !== 'object') return false
  let timeouts = 0
  let flags = false
  for (const name in options) {
    const value = (options as Record<string, unknown>)[name]
    if (value === undefined) continue
    if (POLICY_OPTION_NAMES.has(name)) {
      if (acceptedPolicyValues.get(name)?.has(value) !== true) return false
      if (name === 'softTimeout' || name === 'hardTimeout') timeouts++
    } else if (name === 'tags') assertValidTags(cache, value, key)
    else if (name === 'skipL1' || name === 'skipL2') flags = true
    else if (name === 'signal') checkSignal(value, { cache, key })
    else return false
  }
  if (flags) tierSkipsOf(options, { cache, key })
  return timeouts < 2
}

function rememberPolicyValues(options: GetOrSetOptions): void {
  for (const name of READ_POLICY_OPTIONS) {
    const value = options[name]
    if (value === undefined || (typeof value !== 'string' && typeof value !== 'number')) continue
    let values = acceptedPolicyValues.get(name)
    if (values === undefined) acceptedPolicyValues.set(name, (values = new Set()))
    if (values.size >= MAX_REMEMBERED_VALUES) values.clear()
    values.add(value)
  }
}

function checkSignal(signal: unknown, context: { cache: string; key: string }): void {
  if (!isAbortSignal(signal)) throw new InvalidOptionError('signal: must be an AbortSignal', context)
  signal.throwIfAborted()
}

function isAbortSignal(value: unknown): value is AbortSignal {
  return typeof value === 'object' && value !== null && typeof (value as AbortSignal).addEventListener === 'function' && 'aborted' in value
}
