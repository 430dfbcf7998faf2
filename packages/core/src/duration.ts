import { InvalidOptionError, type ErrorContext } from './errors.js'

/** Milliseconds, or a string such as `'250ms'`, `'60s'`, `'5m'`, `'1h'`, `'1d'`. */
export type Duration = number | string

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/

/** Longest duration accepted anywhere (about 24.8 days): beyond it timers overflow. */
export const MAX_DURATION_MS = 2_147_483_647

/**
 * Parses a duration to whole milliseconds (fractions round up, so `'0.5ms'` is
 * 1 ms rather than 0). Rejects anything that is not a finite, positive amount
 * within `MAX_DURATION_MS`, naming the option so the caller can find it.
 */
export function parseDuration(input: Duration, option: string, context: ErrorContext = {}): number {
  let ms: number
  if (typeof input === 'number') {
    ms = input
  } else if (typeof input === 'string') {
    const match = DURATION_PATTERN.exec(input.trim())
    if (match === null) {
      throw new InvalidOptionError(`${option}: "${input}" is not a duration; use milliseconds or a string like '250ms', '60s', '5m', '1h'`, context)
    }
    ms = exactMilliseconds(match[1]!, UNIT_MS[match[2]!]!)
  } else {
    throw new InvalidOptionError(`${option}: expected milliseconds or a duration string, got ${typeof input}`, context)
  }
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new InvalidOptionError(`${option}: must be a positive duration, got ${String(input)}`, context)
  }
  if (ms > MAX_DURATION_MS) {
    throw new InvalidOptionError(`${option}: ${String(input)} exceeds the maximum of ${MAX_DURATION_MS} ms`, context)
  }
  return Math.ceil(ms)
}

/**
 * `amount` (decimal digits, maybe a fraction) times `unitMs`, rounded up to
 * whole milliseconds, computed exactly: in floating point '2.2h' is
 * 2.2 * 3 600 000 = 7 920 000.000000001, which rounds up to 7 920 001 ms.
 */
function exactMilliseconds(amount: string, unitMs: number): number {
  const [whole, fraction = ''] = amount.split('.')
  const scale = 10n ** BigInt(fraction.length)
  const numerator = BigInt(`${whole}${fraction}`) * BigInt(unitMs)
  return Number((numerator + scale - 1n) / scale)
}
