/**
 * The bus wire format under hostile input, property-based. Anything that can
 * PUBLISH on the channel can send anything: every input either decodes to a
 * well-formed batch or is rejected (undefined: the bus counts one drop), the
 * decoder never throws, and nothing it reads reaches an object prototype.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BusMembers } from '../src/bus-members.js'
import { decodeInvalidations, encodeInvalidations, MAX_MESSAGE_BYTES, type DecodedMessage } from '../src/bus-protocol.js'
import type { BusMember, Invalidation, OriginInvalidation } from '../src/contracts.js'

const RUNS = 100_000
/** 100k cases take a few seconds each on an idle machine; the margin is for a loaded CI box. */
const FUZZ_TIMEOUT = 180_000

// ------------------------------------------------------------------ oracles

/** A decoder result has exactly the protocol's shape, built of plain objects, arrays and strings. */
function isWellFormed(result: DecodedMessage): boolean {
  if (Object.getPrototypeOf(result) !== Object.prototype || !sameKeys(result, ['dropped', 'invalidations'])) return false
  if (!Number.isSafeInteger(result.dropped) || result.dropped < 0) return false
  if (!Array.isArray(result.invalidations) || Object.getPrototypeOf(result.invalidations) !== Array.prototype) return false
  for (const entry of result.invalidations) {
    if (Object.getPrototypeOf(entry) !== Object.prototype || !sameKeys(entry, ['invalidation', 'origin'])) return false
    if (typeof entry.origin !== 'string') return false
    const inv = entry.invalidation
    if (Object.getPrototypeOf(inv) !== Object.prototype || typeof inv.cache !== 'string') return false
    if (inv.kind === 'key') {
      if (!sameKeys(inv, ['cache', 'key', 'kind']) || typeof inv.key !== 'string') return false
    } else if (inv.kind === 'tags') {
      if (!sameKeys(inv, ['cache', 'kind', 'tags']) || !Array.isArray(inv.tags) || inv.tags.length === 0) return false
      if (Object.getPrototypeOf(inv.tags) !== Array.prototype || !inv.tags.every((tag) => typeof tag === 'string')) return false
    } else if (inv.kind === 'clear') {
      if (!sameKeys(inv, ['cache', 'kind'])) return false
    } else {
      return false
    }
  }
  return true
}

function sameKeys(object: object, keys: readonly string[]): boolean {
  const own = Reflect.ownKeys(object)
  return own.length === keys.length && keys.every((key) => Object.hasOwn(object, key))
}

/** Deepest nesting of `[` and `{` in valid JSON text, counted on the text with its strings removed (duplicate members count too). */
function textDepthOf(json: string): number {
  let depth = 0
  let deepest = 0
  for (const c of json.replace(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if (c === '[' || c === '{') deepest = Math.max(deepest, ++depth)
    else if (c === ']' || c === '}') depth--
  }
  return deepest
}

/**
 * What the decoder must answer for `text`, from the protocol's definition:
 * at most MAX_MESSAGE_BYTES of UTF-8, JSON text nested at most 4 deep, an object
 * with own members v === 1 and i an array; each entry of i is kept when it is
 * exactly one of the three entry shapes, else counted as dropped.
 */
function expectedDecode(text: string): DecodedMessage | undefined {
  if (Buffer.byteLength(text, 'utf8') > MAX_MESSAGE_BYTES) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (textDepthOf(text) > 4) return undefined
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined
  const message = parsed as Record<string, unknown>
  if (!Object.hasOwn(message, 'v') || message.v !== 1 || !Object.hasOwn(message, 'i') || !Array.isArray(message.i)) return undefined
  const invalidations: OriginInvalidation[] = []
  let dropped = 0
  for (const item of message.i as unknown[]) {
    const entry = Array.isArray(item) ? (item as unknown[]) : undefined
    const [origin, kind, cache, last] = entry ?? []
    const strings = typeof origin === 'string' && typeof cache === 'string'
    if (strings && kind === 'k' && entry!.length === 4 && typeof last === 'string') {
      invalidations.push({ origin, invalidation: { kind: 'key', cache, key: last } })
    } else if (strings && kind === 't' && entry!.length === 4 && Array.isArray(last) && last.length > 0 && last.every((tag) => typeof tag === 'string')) {
      invalidations.push({ origin, invalidation: { kind: 'tags', cache, tags: last as string[] } })
    } else if (strings && kind === 'c' && entry!.length === 3) {
      invalidations.push({ origin, invalidation: { kind: 'clear', cache } })
    } else {
      dropped++
    }
  }
  return { invalidations, dropped }
}

// ------------------------------------------------------------- generators

/** Any UTF-16 code unit, lone surrogates included: what a JavaScript string can hold. */
const utf16 = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit)), maxLength: 24 })
/** Names an attacker would try on a plain-object index. */
const PROTO_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'] as const
const name = fc.oneof(fc.string({ unit: 'binary', maxLength: 24 }), utf16, fc.string({ unit: 'grapheme', maxLength: 12 }), fc.constantFrom(...PROTO_NAMES, ''))
const invalidation: fc.Arbitrary<Invalidation> = fc.oneof(
  fc.record({ kind: fc.constant('key' as const), cache: name, key: name }),
  fc.record({ kind: fc.constant('tags' as const), cache: name, tags: fc.array(name, { minLength: 1, maxLength: 5 }) }),
  fc.record({ kind: fc.constant('clear' as const), cache: name }),
)
const batch = fc.array(fc.record({ origin: name, invalidation }), { maxLength: 8 })
const encoded = batch.map(encodeInvalidations)

/** A valid message with one edit: a unit inserted, deleted or replaced, or the text cut short. */
const mutatedMessage = fc
  .tuple(encoded, fc.nat(), fc.constantFrom('insert', 'delete', 'replace', 'truncate'), fc.constantFrom(...'{}[]",:\\0123456789vikct-.e \u0000\ud800'))
  .map(([text, at, edit, unit]) => {
    const index = at % (text.length + 1)
    if (edit === 'insert') return text.slice(0, index) + unit + text.slice(index)
    if (edit === 'delete') return text.slice(0, index) + text.slice(index + 1)
    if (edit === 'replace') return text.slice(0, index) + unit + text.slice(index + 1)
    return text.slice(0, index)
  })

/** Text made of JSON's own punctuation and the protocol's letters: parses far more often than random text. */
const jsonSoup = fc.string({ unit: fc.constantFrom(...'{}[]",:\\ 0123456789vikcto_-.eun'), maxLength: 60 })

const anyString = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), utf16, jsonSoup, fc.json({ maxDepth: 4 }), encoded, mutatedMessage)

/** Valid UTF-8 with bytes flipped (so often invalid UTF-8), or random bytes. */
const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.tuple(encoded, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 })).map(([text, flips]) => {
    const bytes = new Uint8Array(Buffer.from(text, 'utf8'))
    for (const [at, value] of flips) if (bytes.length > 0) bytes[at % bytes.length] = value
    return bytes
  }),
)

/** JSON text that is near a valid message: right and wrong versions, wrong types, extra members, `__proto__` everywhere. */
const POLLUTERS = [
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"__proto__":{"v":1,"i":[["o","c","c"]]}}',
  '[{"__proto__":{"polluted":true}}]',
] as const
const field = fc.oneof(
  { weight: 6, arbitrary: name.map((text) => JSON.stringify(text)) },
  { weight: 1, arbitrary: fc.constantFrom('1', 'null', 'true', '{}', '[]', '["x"]', ...POLLUTERS) },
)
const lastField = fc.oneof(
  { weight: 4, arbitrary: name.map((text) => JSON.stringify(text)) },
  { weight: 3, arbitrary: fc.array(field, { maxLength: 4 }).map((tags) => `[${tags.join(',')}]`) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 2 }) },
)
/** The kind of an entry and how many fields it usually has (weighted so that about half the entries are well formed). */
const KINDS: ReadonlyArray<readonly [string, number]> = [
  ['"k"', 4],
  ['"t"', 4],
  ['"c"', 3],
  ['"x"', 4],
  ['"K"', 4],
  ['""', 3],
  ['"key"', 4],
  ['1', 4],
  ['null', 3],
]
const entry = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        field,
        fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...KINDS.slice(0, 3)) }, { weight: 1, arbitrary: fc.constantFrom(...KINDS.slice(3)) }),
        field,
        lastField,
        fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 5 }) }),
      )
      .map(([origin, [kind, natural], cache, last, length]) => `[${[origin, kind, cache, last, '"extra"'].slice(0, length ?? natural).join(',')}]`),
  },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(...POLLUTERS, '{"0":"o","1":"c","2":"c","length":3}') },
)
const member = (key: string, value: fc.Arbitrary<string>) => value.map((text) => `${JSON.stringify(key)}:${text}`)
const nearValid = fc
  .tuple(
    fc.option(
      member(
        'v',
        fc.oneof(
          { weight: 5, arbitrary: fc.constant('1') },
          { weight: 1, arbitrary: fc.constantFrom('2', '0', '-1', '1.5', '1e0', '"1"', 'true', 'null', '[1]', '{}') },
        ),
      ),
    ),
    fc.option(
      member(
        'i',
        fc.oneof(
          { weight: 5, arbitrary: fc.array(entry, { maxLength: 6 }).map((items) => `[${items.join(',')}]`) },
          { weight: 1, arbitrary: fc.json({ maxDepth: 2 }) },
        ),
      ),
    ),
    fc.array(
      fc.tuple(
        fc.constantFrom('__proto__', 'constructor', 'prototype', 'polluted', 'v', 'i', 'x'),
        fc.oneof(fc.json({ maxDepth: 2 }), fc.constantFrom(...POLLUTERS)),
      ),
      { maxLength: 3 },
    ),
    fc.boolean(),
  )
  .map(([v, i, extras, extrasFirst]) => {
    const base = [v, i].filter((m): m is string => m !== null)
    const more = extras.map(([key, value]) => `${JSON.stringify(key)}:${value}`)
    return `{${(extrasFirst ? [...more, ...base] : [...base, ...more]).join(',')}}`
  })

// ----------------------------------------------------------------- pollution

const prototypes = [Object.prototype, Array.prototype, Function.prototype, String.prototype] as const
let ownNamesBefore: string[][]
beforeAll(() => {
  ownNamesBefore = prototypes.map((proto) => Reflect.ownKeys(proto).map(String).sort())
})
afterAll(() => {
  // Checked once more after every property has run (each test checks too).
  expectNoPollution()
})

function expectNoPollution(): void {
  expect(prototypes.map((proto) => Reflect.ownKeys(proto).map(String).sort())).toEqual(ownNamesBefore)
  expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined()
  expect(({} as Record<string, unknown>).v).toBeUndefined()
  expect(Object.getPrototypeOf({})).toBe(Object.prototype)
}

/** Records what each member receives, so routing by cache name can be checked. */
function recordingMembers(names: readonly string[]) {
  const members = new BusMembers()
  const received = new Map<string, Invalidation[]>()
  for (const cacheName of names) {
    const got: Invalidation[] = []
    received.set(cacheName, got)
    const member: BusMember = { instanceId: `member-of-${cacheName}`, cacheName, onInvalidation: (inv) => got.push(inv), onGap: () => {} }
    members.add(member)
  }
  return { members, received }
}

// -------------------------------------------------------------------- tests

describe('bus protocol under hostile input', () => {
  it(
    `(a) any string: never throws; undefined or a well-formed batch (${RUNS} cases)`,
    () => {
      fc.assert(
        fc.property(anyString, (text) => {
          const result = decodeInvalidations(text)
          return result === undefined || isWellFormed(result)
        }),
        { numRuns: RUNS },
      )
      expectNoPollution()
    },
    FUZZ_TIMEOUT,
  )

  it(
    `(a) any bytes (invalid UTF-8 included): never throws; decodes as their UTF-8 text would, also as a view into a larger buffer (${RUNS} cases)`,
    () => {
      fc.assert(
        fc.property(anyBytes, fc.uint8Array({ maxLength: 4 }), fc.uint8Array({ maxLength: 4 }), (bytes, before, after) => {
          const result = decodeInvalidations(bytes)
          if (result !== undefined && !isWellFormed(result)) return false
          expect(result).toEqual(decodeInvalidations(Buffer.from(bytes).toString('utf8')))
          // A view (Buffer.subarray, a slice of a pooled buffer) decodes its own bytes only.
          const pool = new Uint8Array(before.length + bytes.length + after.length)
          pool.set(before, 0)
          pool.set(bytes, before.length)
          pool.set(after, before.length + bytes.length)
          expect(decodeInvalidations(pool.subarray(before.length, before.length + bytes.length))).toEqual(result)
          return true
        }),
        { numRuns: RUNS },
      )
      expectNoPollution()
    },
    FUZZ_TIMEOUT,
  )

  it(
    `(b) round trip: any batch (any unicode, lone surrogates, __proto__ names) encodes and decodes to itself (${RUNS} cases)`,
    () => {
      fc.assert(
        fc.property(batch, (original) => {
          const message = encodeInvalidations(original)
          expect(Buffer.byteLength(message, 'utf8')).toBeLessThanOrEqual(MAX_MESSAGE_BYTES)
          expect(decodeInvalidations(message)).toEqual({ invalidations: original, dropped: 0 })
          expect(decodeInvalidations(Buffer.from(message, 'utf8'))).toEqual({ invalidations: original, dropped: 0 })
        }),
        { numRuns: RUNS },
      )
      expectNoPollution()
    },
    FUZZ_TIMEOUT,
  )

  it(
    `(c) near-valid JSON (wrong versions and types, extra members, __proto__ anywhere): decoded exactly as the protocol says, routed by exact cache name, no prototype touched (${RUNS} cases)`,
    () => {
      const { members, received } = recordingMembers(['__proto__', 'constructor', 'toString', 'hasOwnProperty', ''])
      let rejected = 0
      let withDrops = 0
      let delivered = 0
      fc.assert(
        fc.property(nearValid, (text) => {
          const result = decodeInvalidations(text)
          expect(result).toEqual(expectedDecode(text))
          if (result === undefined) {
            rejected++
            return
          }
          expect(isWellFormed(result)).toBe(true)
          if (result.dropped > 0) withDrops++
          for (const { invalidation: inv } of result.invalidations) {
            members.deliver('sender', inv)
            delivered++
          }
        }),
        { numRuns: RUNS },
      )
      console.log(
        `near-valid: ${rejected} rejected, ${withDrops} with dropped entries, ${delivered} entries delivered (${[...received].map(([n, got]) => `${JSON.stringify(n)}: ${got.length}`).join(', ')})`,
      )
      // Every member got only invalidations naming its own cache.
      for (const [cacheName, got] of received) for (const inv of got) expect(inv.cache).toBe(cacheName)
      // The generator reaches every branch often: rejected messages, batches with dropped entries, delivered entries.
      expect(rejected).toBeGreaterThan(RUNS / 20)
      expect(withDrops).toBeGreaterThan(RUNS / 20)
      expect(delivered).toBeGreaterThan(RUNS / 20)
      expect([...received.values()].every((got) => got.length > 0)).toBe(true)
      expectNoPollution()
    },
    FUZZ_TIMEOUT,
  )
})

describe('bus protocol limits', () => {
  /** A valid message of exactly `bytes` UTF-8 bytes: one clear, padded by an extra member of `pad` characters. */
  function messageOf(bytes: number, pad = 'x'): string {
    const head = '{"v":1,"i":[["o","c","c"]],"pad":"'
    const room = bytes - Buffer.byteLength(`${head}"}`, 'utf8')
    const padBytes = Buffer.byteLength(pad, 'utf8')
    return `${head + pad.repeat(Math.floor(room / padBytes)) + 'x'.repeat(room % padBytes)}"}`
  }
  const ONE_CLEAR = { invalidations: [{ origin: 'o', invalidation: { kind: 'clear', cache: 'c' } }], dropped: 0 }

  it('MAX_MESSAGE_BYTES is 1 MiB: a message of exactly that many UTF-8 bytes is decoded, one byte more is dropped unread', () => {
    expect(MAX_MESSAGE_BYTES).toBe(1024 * 1024)
    for (const pad of ['x', 'é', '€', '😀']) {
      const atLimit = messageOf(MAX_MESSAGE_BYTES, pad)
      const overLimit = messageOf(MAX_MESSAGE_BYTES + 1, pad)
      expect(Buffer.byteLength(atLimit, 'utf8')).toBe(MAX_MESSAGE_BYTES)
      expect(Buffer.byteLength(overLimit, 'utf8')).toBe(MAX_MESSAGE_BYTES + 1)
      expect(decodeInvalidations(atLimit)).toEqual(ONE_CLEAR)
      expect(decodeInvalidations(Buffer.from(atLimit, 'utf8'))).toEqual(ONE_CLEAR)
      expect(decodeInvalidations(overLimit)).toBeUndefined()
      expect(decodeInvalidations(Buffer.from(overLimit, 'utf8'))).toBeUndefined()
    }
    // Fewer UTF-16 units than the limit, more bytes: the bytes count.
    const wide = messageOf(MAX_MESSAGE_BYTES + 3, '€')
    expect(wide.length).toBeLessThan(MAX_MESSAGE_BYTES)
    expect(decodeInvalidations(wide)).toBeUndefined()
    expect(decodeInvalidations(messageOf(2 * MAX_MESSAGE_BYTES))).toBeUndefined()
  })

  it('a v1 message nests 4 deep at most; deeper input is rejected before JSON.parse, whatever else it holds', () => {
    const tags = '{"v":1,"i":[["o","t","c",["a","b"]]]}'
    expect(decodeInvalidations(tags)?.invalidations).toHaveLength(1)
    expect(decodeInvalidations('{"v":1,"i":[["o","c","c"]],"x":[[[[]]]]}')).toBeUndefined()
    expect(decodeInvalidations('{"v":1,"i":[["o","c","c"]],"x":"[[[[[[]]]]]]"}')?.invalidations).toHaveLength(1) // brackets in a string are text
    expect(decodeInvalidations('{"v":1,"i":[["o","c","c"]],"x":"\\"[[[[[[]]]]]]"}')?.invalidations).toHaveLength(1)
    expect(decodeInvalidations('['.repeat(MAX_MESSAGE_BYTES / 2) + ']'.repeat(MAX_MESSAGE_BYTES / 2))).toBeUndefined()
    expect(decodeInvalidations('['.repeat(MAX_MESSAGE_BYTES))).toBeUndefined()
  })

  it('inherited v and i do not make a message: only own members count, even with Object.prototype polluted by someone else', () => {
    const proto = Object.prototype as Record<string, unknown>
    proto.v = 1
    proto.i = [['o', 'c', 'c']]
    try {
      expect(decodeInvalidations('{}')).toBeUndefined()
      expect(decodeInvalidations('{"v":1}')).toBeUndefined()
    } finally {
      delete proto.v
      delete proto.i
    }
    expect(decodeInvalidations('{"__proto__":{"v":1,"i":[["o","c","c"]]}}')).toBeUndefined()
    expectNoPollution()
  })

  it('values that are neither strings nor byte arrays are rejected, never thrown on', () => {
    for (const value of [undefined, null, 42, {}, [], new ArrayBuffer(4), Symbol('s'), () => 1, new DataView(new ArrayBuffer(2))]) {
      expect(decodeInvalidations(value as unknown as string)).toBeUndefined()
    }
  })
})

describe('the encoder stays within MAX_MESSAGE_BYTES', () => {
  const ORIGIN = 'abcdefghijkl' // newInstanceId(): 9 random bytes, base64url
  const CACHE = 'c'.repeat(100) // the longest valid cache name
  const keys = (count: number, key: (index: number) => string): OriginInvalidation[] =>
    Array.from({ length: count }, (_, index) => ({ origin: ORIGIN, invalidation: { kind: 'key', cache: CACHE, key: key(index) } }))

  it('a full tick of long ASCII keys (512 x 1024 units, the batcher and key limits) goes out as is', () => {
    const batch = keys(512, (index) => String(index).padEnd(1024, 'k'))
    const message = encodeInvalidations(batch)
    expect(Buffer.byteLength(message, 'utf8')).toBeLessThanOrEqual(MAX_MESSAGE_BYTES)
    expect(decodeInvalidations(message)).toEqual({ invalidations: batch, dropped: 0 })
  })

  it('a batch whose JSON would exceed the limit goes out as one clear per (origin, cache), which receivers accept', () => {
    const controlKeys = keys(512, (index) => String(index).padEnd(1024, '\u001f')) // 6 bytes per unit in JSON: ~3 MiB
    const wideKeys = keys(512, (index) => String(index).padEnd(1024, '字')) // 3 bytes per unit: ~1.5 MiB
    const manyTags: OriginInvalidation[] = [
      { origin: ORIGIN, invalidation: { kind: 'key', cache: 'small', key: 'k' } },
      { origin: ORIGIN, invalidation: { kind: 'tags', cache: CACHE, tags: Array.from({ length: 10_000 }, (_, index) => String(index).padEnd(256, 't')) } },
      { origin: 'other-origin', invalidation: { kind: 'key', cache: CACHE, key: 'k' } },
    ]
    expect(decodeInvalidations(encodeInvalidations(controlKeys))).toEqual({
      invalidations: [{ origin: ORIGIN, invalidation: { kind: 'clear', cache: CACHE } }],
      dropped: 0,
    })
    expect(decodeInvalidations(encodeInvalidations(wideKeys))).toEqual({
      invalidations: [{ origin: ORIGIN, invalidation: { kind: 'clear', cache: CACHE } }],
      dropped: 0,
    })
    expect(decodeInvalidations(encodeInvalidations(manyTags))).toEqual({
      invalidations: [
        { origin: ORIGIN, invalidation: { kind: 'clear', cache: 'small' } },
        { origin: ORIGIN, invalidation: { kind: 'clear', cache: CACHE } },
        { origin: 'other-origin', invalidation: { kind: 'clear', cache: CACHE } },
      ],
      dropped: 0,
    })
    // The coarsened form of the worst tick the SDK can build: 512 distinct (origin, longest cache name) pairs.
    const worst = Array.from({ length: 512 }, (_, index) => ({
      origin: `origin${String(index).padStart(6, '0')}`,
      invalidation: { kind: 'key' as const, cache: CACHE, key: '\u001f'.repeat(1024) },
    }))
    const coarsened = encodeInvalidations(worst)
    expect(Buffer.byteLength(coarsened, 'utf8')).toBeLessThan(64 * 1024)
    expect(decodeInvalidations(coarsened)?.invalidations).toHaveLength(512)
  })

  // Batches of up to 512 long entries take ~100 ms each to generate and check: 100 cases, not 100k
  // (this is a property of our own encoder's output, not a fuzzer of hostile input).
  it(
    'any batch of up to 512 long entries: within the limit, decoded exactly or as clears covering every (origin, cache) it names (100 cases)',
    () => {
      const bigName = fc
        .tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 1024 }))
        .map(([unit, times]) => unit.repeat(times).slice(0, 1024))
      const bigInvalidation: fc.Arbitrary<Invalidation> = fc.oneof(
        fc.record({ kind: fc.constant('key' as const), cache: fc.constantFrom('users', 'orders', CACHE), key: bigName }),
        fc.record({
          kind: fc.constant('tags' as const),
          cache: fc.constantFrom('users', CACHE),
          tags: fc.array(
            bigName.map((tag) => tag.slice(0, 256)),
            { minLength: 1, maxLength: 64, size: 'max' },
          ),
        }),
        fc.record({ kind: fc.constant('clear' as const), cache: fc.constantFrom('users', 'orders') }),
      )
      const bigBatch = fc
        .integer({ min: 1, max: 512 })
        .chain((length) =>
          fc.array(fc.record({ origin: fc.constantFrom(ORIGIN, 'mnopqrstuvwx'), invalidation: bigInvalidation }), { minLength: length, maxLength: length }),
        )
        // A counterexample is megabytes of names: reported by its size, reproduced by its seed.
        .map((entries) =>
          Object.defineProperty(entries, fc.toStringMethod, {
            value: () => `a batch of ${entries.length} entries, ${JSON.stringify(entries).length} JSON units`,
          }),
        )
      let coarsenedRuns = 0
      fc.assert(
        fc.property(bigBatch, (original) => {
          const message = encodeInvalidations(original)
          expect(Buffer.byteLength(message, 'utf8')).toBeLessThanOrEqual(MAX_MESSAGE_BYTES)
          const decoded = decodeInvalidations(message)!
          expect(decoded.dropped).toBe(0)
          const plain = JSON.stringify({
            v: 1,
            i: original.map(({ origin, invalidation: inv }) => [
              origin,
              inv.kind[0],
              inv.cache,
              ...(inv.kind === 'key' ? [inv.key] : inv.kind === 'tags' ? [inv.tags] : []),
            ]),
          })
          if (Buffer.byteLength(plain, 'utf8') <= MAX_MESSAGE_BYTES) {
            expect(message).toBe(plain)
            expect(decoded.invalidations).toEqual(original)
          } else {
            coarsenedRuns++
            const pairs = [...new Set(original.map(({ origin, invalidation: inv }) => JSON.stringify([origin, inv.cache])))]
            expect(decoded.invalidations).toEqual(
              pairs.map((pair) => {
                const [origin, cache] = JSON.parse(pair) as [string, string]
                return { origin, invalidation: { kind: 'clear', cache } }
              }),
            )
          }
        }),
        // No shrinking: a counterexample is a batch of hundreds of kilobyte-long names, and shrinking it takes many minutes.
        { numRuns: 100, endOnFailure: true },
      )
      expect(coarsenedRuns).toBeGreaterThan(0)
    },
    FUZZ_TIMEOUT,
  )
})
