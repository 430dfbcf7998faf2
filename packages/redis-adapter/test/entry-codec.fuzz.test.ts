/**
 * Hostile L2 content: whatever bytes sit under an entry key — written by
 * another program, truncated, corrupted, of another format version — the
 * decoder answers "not an entry" or a well-formed entry, never throws and
 * never pollutes a prototype. 100 000 cases per property.
 */
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeStored, ENVELOPE_VERSION } from '../src/entry-codec.js'
import { msgpackSerializer } from '../src/serializer.js'

/** CPU-bound: 100 000 cases take ~10 s idle and several times that on a loaded box; the time is not what is tested. */
const PROPERTY_TIMEOUT = { timeout: 300_000 }

const RUNS = 100_000
const serializer = msgpackSerializer()
const packr = new Packr({ moreTypes: true })

/** Bytes shaped like a stored entry: a header (possibly lying about its tag bytes) and a body. */
function stored(header: string, body: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(header), body])
}

/** What a caller may rely on when decodeStored answers at all. */
function assertWellFormed(decoded: ReturnType<typeof decodeStored>): void {
  if (decoded === undefined) return
  expect(Number.isFinite(decoded.createdAt)).toBe(true)
  expect(Number.isFinite(decoded.graceMs) && decoded.graceMs >= 0).toBe(true)
  if (decoded.tags !== undefined) for (const tag of decoded.tags) expect(typeof tag).toBe('string')
}

/** Encodings of maps whose keys are `__proto__`, `constructor` or `prototype`: what a polluting writer would store. */
const pollutingMap = fc
  .tuple(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.constantFrom('polluted', 'isAdmin', 'toString'), fc.anything())
  .map(([key, inner, value]) => {
    const name = Buffer.from(key)
    return Buffer.concat([Buffer.from([0x81, 0xa0 | name.length]), name, packr.pack({ [inner]: value, prototype: { [inner]: value } })])
  })

afterEach(() => {
  // A polluted prototype would show on every object of the process.
  const probe: Record<string, unknown> = {}
  expect(probe.polluted).toBeUndefined()
  expect(probe.isAdmin).toBeUndefined()
  expect(Object.prototype.toString).toBe(Object.getOwnPropertyDescriptor(Object.prototype, 'toString')?.value)
})

describe('entry decoder under hostile bytes', () => {
  it('random bytes: never throws, and nothing that is not an entry is taken for one', PROPERTY_TIMEOUT, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        assertWellFormed(decodeStored(Buffer.from(bytes), serializer))
      }),
      { numRuns: RUNS },
    )
  })

  it('a valid-looking header over random, truncated or lying bodies: never throws', PROPERTY_TIMEOUT, () => {
    const header = fc.tuple(
      fc.stringMatching(/^[0-9.]{0,20}$/),
      fc.oneof(fc.nat(), fc.constant(-1), fc.double()),
      fc.oneof(fc.nat({ max: 300 }), fc.constant(999_999_999_999_999), fc.constant(-5)),
    )
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 128 }), fc.nat({ max: 127 }), ([generation, fresh, tagBytes], body, cut) => {
        const whole = stored(`${generation},${fresh},${tagBytes}:`, body)
        assertWellFormed(decodeStored(whole, serializer))
        assertWellFormed(decodeStored(whole.subarray(0, Math.min(cut, whole.length)), serializer)) // truncated
      }),
      { numRuns: RUNS },
    )
  })

  it('envelopes of other shapes and versions (any msgpack value) are not entries; real ones decode to what was stored', PROPERTY_TIMEOUT, () => {
    fc.assert(
      fc.property(fc.anything({ withMap: true, withSet: true, withDate: true, withTypedArray: true }), fc.integer(), (value, version) => {
        const foreign = decodeStored(stored('1.0,5,0:', packr.pack(value)), serializer)
        assertWellFormed(foreign)
        if (foreign !== undefined) expect(Array.isArray(value) && value[0] === ENVELOPE_VERSION).toBe(true)
        const otherVersion = decodeStored(stored('1.0,5,0:', packr.pack([version === ENVELOPE_VERSION ? version + 1 : version, 1, 0, value])), serializer)
        expect(otherVersion).toBeUndefined()
        const ours = decodeStored(stored('1.0,5,0:', packr.pack([ENVELOPE_VERSION, 1_700_000_000_000, 500, value])), serializer)
        expect(ours?.createdAt).toBe(1_700_000_000_000)
        expect(ours?.graceMs).toBe(500)
      }),
      { numRuns: RUNS },
    )
  })

  it('maps carrying __proto__ / constructor / prototype keys never reach a prototype', PROPERTY_TIMEOUT, () => {
    fc.assert(
      fc.property(pollutingMap, (map) => {
        const envelope = Buffer.concat([Buffer.from([0x94, ENVELOPE_VERSION]), packr.pack(1), packr.pack(0), map])
        const decoded = decodeStored(stored('1.0,5,0:', envelope), serializer)
        assertWellFormed(decoded)
        const value = decoded?.value as Record<string, unknown> | Map<string, unknown> | undefined
        if (value !== undefined && !(value instanceof Map)) {
          expect(Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null).toBe(true)
        }
        expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      }),
      { numRuns: RUNS },
    )
  })
})
