/**
 * Values a shared tier cannot store faithfully — functions, symbols, class
 * instances (their prototype would be lost), Promises, circular structures,
 * values over `maxValueBytes` — are refused with a typed SerializationError
 * before any write, and nothing lands in any tier. Everything else
 * round-trips through msgpack unchanged.
 */
import { createCache, SerializationError } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisServer } from '../../../tests/support/redis-server.js'
import { redisTier } from '../src/index.js'
import { assertEncodable, msgpackSerializer } from '../src/serializer.js'

/** CPU-bound: 100 000 cases take ~10 s idle and several times that on a loaded box; the time is not what is tested. */
const PROPERTY_TIMEOUT = { timeout: 300_000 }

class Account {
  constructor(readonly id: number) {}
}

/** Something that cannot be stored, placed somewhere inside an otherwise plain value. */
const unstorable = fc.oneof(
  fc.constant(() => 1),
  fc.constant(Symbol('s')),
  fc.nat().map((id) => new Account(id)),
  fc.constant(Promise.resolve(1)),
  fc.constant(new (class Point {})()),
)

function circular(): unknown {
  const node: Record<string, unknown> = { name: 'loop' }
  node.self = { back: node }
  return node
}

/** A plain value with an unstorable one hidden at some depth (in an object, an array, a Map or a Set). */
const poisoned = fc.tuple(fc.anything(), unstorable, fc.nat({ max: 3 })).map(([plain, bad, where]) => {
  switch (where) {
    case 0:
      return { plain, nested: { bad } }
    case 1:
      return [plain, [bad]]
    case 2:
      return new Map<unknown, unknown>([
        ['plain', plain],
        ['bad', bad],
      ])
    default:
      return new Set([plain, bad])
  }
})

const storable = fc.anything({ withMap: true, withSet: true, withDate: true, withTypedArray: true, withNullPrototype: true, withBigInt: true })

/** msgpack stores -0 as the integer 0 (documented in README's limits); the property holds up to that. */
function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0
  if (Array.isArray(value)) return value.map(withoutNegativeZero)
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [withoutNegativeZero(k), withoutNegativeZero(v)]))
  if (value instanceof Set) return new Set([...value].map(withoutNegativeZero))
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutNegativeZero(v)]))
  }
  return value
}

let server: RedisServer
let raw: Redis
beforeAll(async () => {
  server = await RedisServer.start()
  raw = new Redis(server.url)
})
afterAll(async () => {
  raw.disconnect()
  await server.stop()
})

describe('values', () => {
  it(
    'in-process, 100 000 cases: a poisoned value is refused by the check; a plain one passes it and round-trips through msgpack',
    () => {
      const serializer = msgpackSerializer()
      const context = { cache: 'v', key: 'k', tier: 'redis' }
      fc.assert(
        fc.property(poisoned, (value) => {
          expect(() => assertEncodable(value, context)).toThrow(SerializationError)
        }),
        { numRuns: 100_000 },
      )
      fc.assert(
        fc.property(storable, (value) => {
          try {
            assertEncodable(value, context)
          } catch (error) {
            // The one plain shape refused: an own "__proto__" property (msgpackr would rename it).
            expect(error).toBeInstanceOf(SerializationError)
            expect((error as Error).message).toContain('__proto__')
            return
          }
          expect(withoutNegativeZero(serializer.decode(serializer.encode(value)))).toEqual(withoutNegativeZero(value))
        }),
        { numRuns: 100_000 },
      )
      expect(() => assertEncodable(circular(), context)).toThrow(/circular/)
    },
    PROPERTY_TIMEOUT.timeout,
  )

  it('on a real Redis: a refused value leaves nothing in L1 or L2, and the error names cache and key', async () => {
    const cache = createCache<unknown>({
      name: 'values',
      tiers: [memoryTier(), redisTier({ redis: server.url, prefix: 'bv', maxValueBytes: 64 * 1024 })],
      ttl: '1h',
      invalidation: { ttlOnly: true },
    })
    let n = 0
    await fc.assert(
      fc.asyncProperty(fc.oneof(poisoned, fc.constant(circular()), fc.constant('x'.repeat(70 * 1024))), async (value) => {
        const key = `k${n++}`
        const error = await cache.set(key, value).then(
          () => undefined,
          (caught: unknown) => caught,
        )
        expect(error).toBeInstanceOf(SerializationError)
        expect(error).toMatchObject({ code: 'ERR_SERIALIZATION', cache: 'values', key })
        expect(await raw.exists(`bv:values:${key}`)).toBe(0)
        expect(await cache.get(key)).toBeUndefined() // not in L1 either
      }),
      { numRuns: 1_000 },
    )
    expect(cache.stats().l1Entries).toBe(0)
    await cache.close()
  }, 60_000)
})
