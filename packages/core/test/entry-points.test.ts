/**
 * The two entry points: `@tiercache/core` for users, `@tiercache/core/adapter`
 * for adapter authors. The internals adapters share must not leak into the
 * user entry (whatever it exports, users come to depend on), and a class both
 * entries export must be one class, or `instanceof` fails for an error thrown
 * through one entry and caught with the other's class. The built dist is
 * checked too (ESM and CJS), since that is what the split-chunk build ships;
 * `pnpm build` before this test, as for the rest of the suite.
 */
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'

type Entry = Record<string, unknown>

/** Names only the adapter entry exports (types have no runtime name to check; the type check covers those). */
const INTERNALS = [
  'InFlightGuard',
  'TickBatcher',
  'BusMembers',
  'decodeInvalidations',
  'encodeInvalidations',
  'BUS_PROTOCOL_VERSION',
  'MAX_MESSAGE_BYTES',
  'clock',
  'assertKnownOptions',
  'NAMESPACE_SEPARATOR',
  'LatencyHistogram',
]

/** What both entries export: the errors, and the checks and parsers an adapter shares with users. */
const SHARED = [
  'TierCacheError',
  'InvalidKeyError',
  'InvalidOptionError',
  'SerializationError',
  'TierError',
  'CacheClosedError',
  'errorMessageOf',
  'parseDuration',
  'MAX_DURATION_MS',
  'MAX_KEY_LENGTH',
  'assertValidKey',
  'assertValidCacheName',
  'busStateChannel',
]

/** Loaded by a computed URL so the type check does not depend on a build having run. */
async function importFile(path: string): Promise<Entry> {
  return (await import(new URL(path, import.meta.url).href)) as Entry
}

const require = createRequire(import.meta.url)

const builds: Array<[string, () => Promise<{ user: Entry; adapter: Entry }>]> = [
  ['src', async () => ({ user: await importFile('../src/index.js'), adapter: await importFile('../src/adapter.js') })],
  ['dist ESM', async () => ({ user: await importFile('../dist/index.js'), adapter: await importFile('../dist/adapter.js') })],
  ['dist CJS', async () => ({ user: require('../dist/index.cjs') as Entry, adapter: require('../dist/adapter.cjs') as Entry })],
]

describe.each(builds)('entry points (%s)', (_build, load) => {
  it('the user entry has the cache and none of the internals', async () => {
    const { user } = await load()
    expect(typeof user.createCache).toBe('function')
    expect(typeof user.Cache).toBe('function')
    expect(INTERNALS.filter((name) => name in user)).toEqual([])
  })

  it('the adapter entry has the internals, and not the cache', async () => {
    const { adapter } = await load()
    expect(INTERNALS.filter((name) => !(name in adapter))).toEqual([])
    expect('createCache' in adapter).toBe(false)
  })

  it('what both entries export is the same object, so instanceof holds across them', async () => {
    const { user, adapter } = await load()
    const errors = Object.keys(user).filter((name) => name.endsWith('Error'))
    expect(errors.length).toBeGreaterThan(10)
    for (const name of [...SHARED, ...errors]) expect(adapter[name], name).toBe(user[name])
    const UserBase = user.TierCacheError as new (...args: never[]) => Error
    const AdapterKeyError = adapter.InvalidKeyError as new (message: string, context: object) => Error
    expect(new AdapterKeyError('bad key', { cache: 'c', key: 'k' })).toBeInstanceOf(UserBase)
    const userCheck = user.assertValidKey as (cache: string, key: unknown) => void
    expect(() => userCheck('c', '')).toThrow(AdapterKeyError)
  })
})
