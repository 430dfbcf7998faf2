import { InvalidOptionError, type ErrorContext } from './errors.js'

/**
 * Milliseconds, or a string of amounts with units, largest unit first, each
 * unit at most once: `'250ms'`, `'60s'`, `'5m'`, `'1h'`, `'1d'`, `'1h30m'`,
 * `'2d12h'`, `'1m30s'`, `'1s500ms'`. Amounts may have a decimal fraction
 * (`'1.5h'`); whitespace around the string is ignored, inside it is not
 * allowed.
 */
export type Duration = number | string

const DAY_MS = 86_400_000

/** The units, largest first: the order a compound duration must use. */
const UNITS = [
  ['d', DAY_MS],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
] as const

// One optional `<amount><unit>` group per unit, in UNITS order, so each unit
// appears at most once and largest first. Each group can match in one way
// only (its digits must run up to its unit letter), so a long string of
// digits costs linear time, not backtracking.
const AMOUNT = String.raw`(\d+(?:\.\d+)?)`
const DURATION_PATTERN = new RegExp(`^${UNITS.map(([unit]) => `(?:${AMOUNT}${unit})?`).join('')}$`)

const ACCEPTED_FORMS = "milliseconds, or amounts with units d, h, m, s, ms, largest first, each at most once, e.g. '250ms', '60s', '1h30m', '2d12h', '1s500ms'"

/**
 * Longest duration accepted for an option that sets a timer (about 24.8
 * days): Node's `setTimeout` takes at most 2^31 - 1 ms and fires at once
 * beyond it. The default bound of `parseDuration`.
 */
export const MAX_DURATION_MS = 2_147_483_647

/**
 * Longest TTL accepted (`ttl`, `negativeTtl`, `grace`, `l1Ttl`, a factory's
 * `setTtl`/`setGrace`): 3650 days. No timer runs on a TTL (expiry is
 * compared with the clock on read, and Redis keeps its own PX), so the bound
 * is not a technical one: it catches a timestamp passed where a duration
 * belongs (`Date.now() + 60_000` is over 50 years of milliseconds).
 */
export const MAX_TTL_MS = 3650 * DAY_MS

/**
 * Parses a duration to whole milliseconds (fractions round up, so `'0.5ms'` is
 * 1 ms rather than 0). Rejects anything that is not a finite, positive amount
 * within `maxMs` (`MAX_DURATION_MS` unless given), naming the option so the
 * caller can find it.
 */
export function parseDuration(input: Duration, option: string, context: ErrorContext = {}, maxMs: number = MAX_DURATION_MS): number {
  let ms: number
  if (typeof input === 'number') {
    ms = input
  } else if (typeof input === 'string') {
    const match = DURATION_PATTERN.exec(input.trim())
    // Every part is optional, so only an empty string matches without one.
    if (match === null || match[0] === '') {
      throw new InvalidOptionError(`${option}: "${input}" is not a duration; use ${ACCEPTED_FORMS}`, context)
    }
    ms = exactMilliseconds(match)
  } else {
    throw new InvalidOptionError(`${option}: expected ${ACCEPTED_FORMS}; got ${typeof input}`, context)
  }
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new InvalidOptionError(`${option}: must be a positive duration, got ${String(input)}`, context)
  }
  if (ms > maxMs) {
    throw new InvalidOptionError(`${option}: ${String(input)} exceeds the maximum of ${describeMax(maxMs)}`, context)
  }
  return Math.ceil(ms)
}

/** Parses a TTL-like option: as `parseDuration`, up to `MAX_TTL_MS`. */
export function parseTtl(input: Duration, option: string, context: ErrorContext = {}): number {
  return parseDuration(input, option, context, MAX_TTL_MS)
}

function describeMax(maxMs: number): string {
  if (maxMs === MAX_DURATION_MS) return `${MAX_DURATION_MS} ms (about 24.8 days, the longest timer Node can set)`
  return maxMs % DAY_MS === 0 ? `${maxMs / DAY_MS}d (${maxMs} ms)` : `${maxMs} ms`
}

/**
 * The sum of the matched `<amount><unit>` parts in whole milliseconds,
 * rounded up. Whole amounts are summed as numbers: each product is exact
 * while the sum is a safe integer, and a sum past that is refused anyway
 * (far over any maximum). An amount with a fraction takes the exact path.
 */
function exactMilliseconds(match: RegExpExecArray): number {
  let ms = 0
  for (let i = 0; i < UNITS.length; i++) {
    const amount = match[i + 1]
    if (amount === undefined) continue
    if (amount.includes('.')) return exactFractionalMilliseconds(match)
    ms += Number(amount) * UNITS[i]![1]
  }
  return ms
}

/**
 * As above, computed exactly with a fraction in play: in floating point
 * '2.2h' is 2.2 * 3 600 000 = 7 920 000.000000001, which would round up to
 * 7 920 001 ms. Each part is digits / 10^(fraction digits) units; they are
 * summed over the largest such scale, then rounded up once.
 */
function exactFractionalMilliseconds(match: RegExpExecArray): number {
  let numerator = 0n
  let scaleDigits = 0
  for (let i = 0; i < UNITS.length; i++) {
    const amount = match[i + 1]
    if (amount === undefined) continue
    const [whole, fraction = ''] = amount.split('.')
    const digits = Math.max(scaleDigits, fraction.length)
    numerator = numerator * 10n ** BigInt(digits - scaleDigits) + BigInt(`${whole}${fraction}`) * BigInt(UNITS[i]![1]) * 10n ** BigInt(digits - fraction.length)
    scaleDigits = digits
  }
  const scale = 10n ** BigInt(scaleDigits)
  return Number((numerator + scale - 1n) / scale)
}
