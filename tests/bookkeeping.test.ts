/**
 * Mechanism 6 — bookkeeping loss fails closed. Redis may lose any of the
 * SDK's own keys at any moment (eviction under `maxmemory` with an
 * `allkeys-*` policy, an operator's pattern delete): the generation, the tag
 * epoch, tag and namespace versions, leases. Losing one must cost misses and
 * refused fills, never an old scope made valid again.
 *
 * The model test below deletes each bookkeeping key, one at a time (and all
 * of them, at every step), at each step of a fill — before its lease, while
 * its factory runs (the factory waits on a promise the test holds), between
 * the invalidation and the store — for each invalidation kind, starting from
 * a cold cache (no bookkeeping yet) and a warm one (every key present), and
 * then asks every instance for the key: no instance may ever read the value
 * the fill computed before the invalidation, from L1 or L2. It runs on a
 * standalone Redis and on a Redis Cluster (where each hash-tag group keeps
 * its own copy of the bookkeeping: the keys deleted are those of the item's
 * group).
 *
 * To see it fail with the fix switched off, point TIERCACHE_REDIS_ADAPTER at
 * a build of the adapter from before it (docs/bookkeeping.md says how).
 */
import { createCache, type BoundSharedTier, type Cache, type SharedTier } from '@tiercache/core'
import { NAMESPACE_SEPARATOR } from '@tiercache/core/adapter'
import { memoryTier } from '@tiercache/memory-adapter'
import type { RedisBus } from '@tiercache/redis-adapter'
import { Redis, type Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clusterLayout, standaloneLayout, type KeyLayout } from '../packages/redis-adapter/src/keyspace.js'
import { ClusterGroup } from './support/redis-cluster.js'
import { RedisServer } from './support/redis-server.js'
import { TcpProxy } from './support/tcp-proxy.js'

const adapter = (await import(process.env.TIERCACHE_REDIS_ADAPTER ?? '@tiercache/redis-adapter')) as typeof import('@tiercache/redis-adapter')

type Kind = 'delete' | 'invalidateTags' | 'invalidateNamespace' | 'clear'
type BookkeepingKey = 'generation' | 'tag epoch' | 'tag version' | 'namespace version' | 'lease'
type Step = 'before the lease' | 'during the factory' | 'between the invalidation and the store'
type Filler = 'L2-only filler' | 'L1+L2+bus filler behind a held link'

const KINDS: readonly Kind[] = ['delete', 'invalidateTags', 'invalidateNamespace', 'clear']
const BOOKKEEPING_KEYS: readonly BookkeepingKey[] = ['generation', 'tag epoch', 'tag version', 'namespace version', 'lease']
const STEPS: readonly Step[] = ['before the lease', 'during the factory', 'between the invalidation and the store']

/**
 * Each key alone at each step; then the epoch lost twice (on a warm cache,
 * the hole of issue 16 needs it missing both when the lease is taken and
 * when the fill stores); then every key at every step.
 */
const LOSSES: ReadonlyArray<{ keys: readonly BookkeepingKey[]; steps: readonly Step[] }> = [
  ...BOOKKEEPING_KEYS.flatMap((key) => STEPS.map((step) => ({ keys: [key], steps: [step] }))),
  { keys: ['tag epoch'], steps: ['before the lease', 'between the invalidation and the store'] },
  { keys: BOOKKEEPING_KEYS, steps: STEPS },
]

const NAMESPACE = 'ns'
/** Every cache here is invalidated by delete, tags, namespace and clear. */
const PLAN = { tags: ['t'], namespaces: ['ns'], notes: 'bookkeeping test' }
const TAG = 't'
const ITEM = 'item'
const STORE_KEY = `${NAMESPACE}${NAMESPACE_SEPARATOR}${ITEM}`

interface Deferred<T> {
  promise: Promise<T>
  resolve(value: T): void
}
function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

/** A shared tier whose bound instances the test can ask for their counters (refused fills). */
function counted(tier: SharedTier): { tier: SharedTier; counters(): { fillsRefused: number; fillsWithoutLease: number } } {
  const bound: BoundSharedTier[] = []
  return {
    tier: {
      ...tier,
      bind(scope) {
        const b = tier.bind(scope)
        bound.push(b)
        return b
      },
    },
    counters() {
      let fillsRefused = 0
      let fillsWithoutLease = 0
      for (const b of bound) {
        const c = b.counters?.() as { fillsRefused?: number; fillsWithoutLease?: number } | undefined
        fillsRefused += c?.fillsRefused ?? 0
        fillsWithoutLease += c?.fillsWithoutLease ?? 0
      }
      return { fillsRefused, fillsWithoutLease }
    },
  }
}

/** The Redis names of the bookkeeping keys the item depends on, in the item's group. */
function bookkeepingNames(layout: KeyLayout): Record<BookkeepingKey, string> {
  const group = layout.groupOf(STORE_KEY)
  const generation = layout.generation(group)
  const base = generation.slice(0, -'gen'.length) // tag versions and the epoch are derived from it (scripts.ts)
  return {
    generation,
    'tag epoch': `${base}tagepoch`,
    'tag version': `${base}tag:${TAG}`,
    'namespace version': `${base}tag:${NAMESPACE_SEPARATOR}${NAMESPACE}`, // a namespace is a reserved tag per level
    lease: layout.lease(STORE_KEY, group),
  }
}

/** A key of the namespace in the item's group (on Cluster: one of 64), so writing it makes that group's bookkeeping. */
function siblingOf(layout: KeyLayout): string {
  const group = layout.groupOf(STORE_KEY)
  for (let i = 0; ; i++) if (layout.groupOf(`${NAMESPACE}${NAMESPACE_SEPARATOR}sibling-${i}`) === group) return `sibling-${i}`
}

interface Backend {
  layout(cache: string): KeyLayout
  /** A connection of the test's own, to look at and delete keys. */
  raw: Redis | Cluster
  /** Tiers and buses, each instance on its own connection(s). */
  fillerTier(): SharedTier
  fillerBus(): RedisBus | undefined
  readerTier(): SharedTier
  readerBus: RedisBus
  plainTier(): SharedTier
  /** Holds the L1+L2+bus filler's bus link once it has received every message published so far. */
  hold(): Promise<void>
  heal(): void
}

/** Polls `condition` every millisecond (an event we cannot subscribe to), failing after 5 s. */
async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

async function invalidate(cache: Cache<string>, kind: Kind): Promise<void> {
  if (kind === 'delete') await cache.namespace(NAMESPACE).delete(ITEM)
  else if (kind === 'invalidateTags') await cache.invalidateTags([TAG])
  else if (kind === 'invalidateNamespace') await cache.invalidateNamespace(NAMESPACE)
  else await cache.clear()
}

let cacheNames = 0

/**
 * One scenario: returns what any instance read afterwards that it must not
 * have, and how many fills the filler's tier saw refused (exactly one: its
 * own, begun before the invalidation).
 */
async function scenario(backend: Backend, filler: Filler, start: 'cold' | 'warm', kind: Kind, loss: (typeof LOSSES)[number]) {
  const label = `${filler}, ${start}, ${kind}, losing ${loss.keys.join(' + ')} ${loss.steps.join(' and ')}`
  const name = `bk${++cacheNames}` // a fresh cache: cold means no bookkeeping key exists yet
  const layout = backend.layout(name)
  const names = bookkeepingNames(layout)
  const l1Filler = filler === 'L1+L2+bus filler behind a held link'
  const fillerTier = counted(backend.fillerTier())
  const fillerCache = createCache<string>({
    name,
    invalidation: PLAN,
    tiers: l1Filler ? [memoryTier(), fillerTier.tier] : [fillerTier.tier],
    bus: l1Filler ? backend.fillerBus() : undefined,
    ttl: '1h',
    onError: () => {},
  })
  const reader = createCache<string>({
    name,
    invalidation: PLAN,
    tiers: [memoryTier(), backend.readerTier()],
    bus: backend.readerBus,
    ttl: '1h',
    onError: () => {},
  })
  const plain = createCache<string>({ name, invalidation: PLAN, tiers: [backend.plainTier()], ttl: '1h', onError: () => {} })
  const violations: string[] = []
  let held = false
  try {
    if (start === 'warm') {
      // Every bookkeeping key of the item's group exists before the fill.
      await reader.namespace(NAMESPACE).set(siblingOf(layout), 'sibling', { tags: [TAG] })
      await reader.invalidateTags(['warm-up'])
      const present = await Promise.all(
        [names.generation, names['tag epoch'], names['tag version'], names['namespace version']].map((key) => backend.raw.exists(key)),
      )
      expect(present, label).toEqual([1, 1, 1, 1])
    }
    const lose = async (step: Step) => {
      if (!loss.steps.includes(step)) return
      for (const key of loss.keys) await backend.raw.del(names[key])
    }
    await lose('before the lease')
    let database = 0
    const started = deferred()
    const gate = deferred()
    const refusedBefore = fillerTier.counters().fillsRefused
    if (l1Filler) {
      // The filler hears nothing of the invalidation before it stores (a slow
      // link): only Redis can refuse its fill, the in-flight guard cannot.
      await backend.hold()
      held = true
    }
    const fill = fillerCache.namespace(NAMESPACE).getOrSet(
      ITEM,
      async () => {
        const value = `v${database}`
        started.resolve()
        await gate.promise
        return value
      },
      { tags: [TAG] },
    )
    await started.promise
    expect(await backend.raw.exists(names.lease), `${label}: the fill holds its lease while its factory runs`).toBe(1)
    await lose('during the factory')
    database = 1 // the source changes, then the cache is told
    await invalidate(reader, kind)
    await lose('between the invalidation and the store')
    gate.resolve()
    expect(await fill, label).toBe('v0') // its own caller may have it: the call began before the invalidation
    if (held) {
      backend.heal()
      held = false
    }
    for (const [who, cache] of [
      ['the filler', fillerCache],
      ['the reader with L1+L2+bus', reader],
      ['the L2-only reader', plain],
    ] as const) {
      const read = await cache.namespace(NAMESPACE).get(ITEM)
      if (read === 'v0') violations.push(`${label}: ${who} read the pre-invalidation value with get()`)
      const filled = await cache.namespace(NAMESPACE).getOrSet(ITEM, async () => `v${database}`, { tags: [TAG] })
      if (filled !== 'v1') violations.push(`${label}: ${who} read ${JSON.stringify(filled)} with getOrSet()`)
      // A miss is fine here: the held invalidation may reach the filler during its getOrSet and keep that value out of its tiers.
      const again = await cache.namespace(NAMESPACE).get(ITEM)
      if (again !== 'v1' && again !== undefined) violations.push(`${label}: ${who} read ${JSON.stringify(again)} with get() after its getOrSet()`)
    }
    return { violations, refused: fillerTier.counters().fillsRefused - refusedBefore }
  } finally {
    if (held) backend.heal()
    await Promise.all([fillerCache.close(), reader.close(), plain.close()])
  }
}

function modelTests(backendOf: () => Backend, fillers: readonly Filler[]) {
  it.each(KINDS)('%s: no instance ever reads the value of a fill begun before it, whichever bookkeeping key is lost at whichever step', async (kind) => {
    const backend = backendOf()
    const violations: string[] = []
    const refused: number[] = []
    for (const filler of fillers) {
      for (const start of ['cold', 'warm'] as const) {
        for (const loss of LOSSES) {
          const outcome = await scenario(backend, filler, start, kind, loss)
          violations.push(...outcome.violations)
          refused.push(outcome.refused)
        }
      }
    }
    expect(violations).toEqual([])
    // Each scenario's fill reached Redis and was refused there (not held back
    // before the store, which would prove nothing about Redis's side).
    expect(refused).toEqual(new Array(fillers.length * 2 * LOSSES.length).fill(1))
  })
}

describe('bookkeeping loss fails closed — standalone Redis', () => {
  const prefix = 'bk'
  let server: RedisServer
  let proxy: TcpProxy
  let raw: Redis
  // One connection per instance role, as separate service instances would have.
  let fillerClient: Redis
  let readerClient: Redis
  let plainClient: Redis
  let readerBus: RedisBus
  let heldBus: RedisBus
  beforeAll(async () => {
    server = await RedisServer.start()
    proxy = await TcpProxy.start(server.port)
    raw = new Redis(server.url)
    fillerClient = new Redis(server.url)
    readerClient = new Redis(server.url)
    plainClient = new Redis(server.url)
    readerBus = adapter.redisBus({ redis: readerClient, prefix }) // shares the reader tier's connection: write and publish in one script
    // Probes answered late while the link is held must not open a gap meanwhile.
    heldBus = adapter.redisBus({ redis: proxy.url, prefix, maxStaleness: '30s' })
    await Promise.all([readerBus.ready(), heldBus.ready()])
  })
  afterAll(async () => {
    await readerBus?.close()
    await heldBus?.close()
    for (const client of [raw, fillerClient, readerClient, plainClient]) client?.disconnect()
    await proxy?.stop()
    await server?.stop()
  })

  modelTests(
    () => ({
      layout: (cache) => standaloneLayout(prefix, cache),
      raw,
      fillerTier: () => adapter.redisTier({ redis: fillerClient, prefix }),
      fillerBus: () => heldBus,
      readerTier: () => adapter.redisTier({ redis: readerClient, prefix }),
      readerBus,
      plainTier: () => adapter.redisTier({ redis: plainClient, prefix }),
      hold: async () => {
        // The warm-up's messages must not reach the filler during its fill (its in-flight guard would then keep the fill from Redis).
        const published = () => readerBus.status().messagesPublished + (readerBus.status().messagesPublishedAtomically ?? 0)
        await waitUntil(() => heldBus.status().messagesReceived === published(), 'the held bus has every message published so far')
        proxy.holdReplies()
      },
      heal: () => proxy.heal(),
    }),
    ['L2-only filler', 'L1+L2+bus filler behind a held link'],
  )

  it('an entry whose generation, tag version or namespace version is lost reads as a miss everywhere and is refilled; losing the epoch or a lease costs a stored entry nothing', async () => {
    const backend = { layout: (cache: string) => standaloneLayout(prefix, cache) }
    for (const key of BOOKKEEPING_KEYS) {
      const name = `bk${++cacheNames}`
      const names = bookkeepingNames(backend.layout(name))
      const writer = createCache<string>({
        name,
        invalidation: PLAN,
        tiers: [memoryTier(), adapter.redisTier({ redis: readerClient, prefix })],
        bus: readerBus,
        ttl: '1h',
      })
      const plain = createCache<string>({ name, invalidation: PLAN, tiers: [adapter.redisTier({ redis: plainClient, prefix })], ttl: '1h' })
      try {
        // The lease exists only during a fill: take one and leave it, as a crashed filler would.
        await writer.namespace(NAMESPACE).set(ITEM, 'stored', { tags: [TAG] })
        await writer.invalidateTags(['warm-up']) // the epoch exists
        expect(await plain.namespace(NAMESPACE).get(ITEM)).toBe('stored')
        await raw.del(names[key])
        const costsAMiss = key === 'generation' || key === 'tag version' || key === 'namespace version'
        expect(await plain.namespace(NAMESPACE).get(ITEM), key).toBe(costsAMiss ? undefined : 'stored')
        expect(await plain.namespace(NAMESPACE).getOrSet(ITEM, async () => 'refilled', { tags: [TAG] }), key).toBe(costsAMiss ? 'refilled' : 'stored')
        expect(await plain.namespace(NAMESPACE).get(ITEM), key).toBe(costsAMiss ? 'refilled' : 'stored')
      } finally {
        await Promise.all([writer.close(), plain.close()])
      }
    }
  })
})

describe('bookkeeping loss fails closed — Redis Cluster (per hash-tag group)', () => {
  const prefix = 'bkc'
  let group: ClusterGroup
  let raw: Cluster
  let fillerClient: Cluster
  let readerClient: Cluster
  let plainClient: Cluster
  let readerBus: RedisBus
  beforeAll(async () => {
    group = await ClusterGroup.start({ primaries: 3, replicasPerPrimary: 0 })
    raw = group.client()
    fillerClient = group.client()
    readerClient = group.client()
    plainClient = group.client()
    readerBus = adapter.redisBus({ redis: readerClient, prefix })
    await readerBus.ready()
  }, 60_000)
  afterAll(async () => {
    await readerBus?.close()
    for (const client of [raw, fillerClient, readerClient, plainClient]) client?.disconnect()
    await group?.stop()
  })

  modelTests(
    () => ({
      layout: (cache) => clusterLayout(prefix, cache),
      raw,
      fillerTier: () => adapter.redisTier({ redis: fillerClient, prefix }),
      fillerBus: () => undefined,
      readerTier: () => adapter.redisTier({ redis: readerClient, prefix }),
      readerBus,
      plainTier: () => adapter.redisTier({ redis: plainClient, prefix }),
      hold: async () => {},
      heal: () => {},
    }),
    ['L2-only filler'],
  )
})

describe('bookkeeping under noeviction: when Redis refuses writes (OOM), nothing is left half-applied', () => {
  const prefix = 'oom'
  let server: RedisServer
  let raw: Redis
  let writerClient: Redis
  let fillerClient: Redis
  let plainClient: Redis
  let bus: RedisBus
  beforeAll(async () => {
    server = await RedisServer.start(['--maxmemory-policy', 'noeviction'])
    raw = new Redis(server.url)
    writerClient = new Redis(server.url)
    fillerClient = new Redis(server.url)
    plainClient = new Redis(server.url)
    bus = adapter.redisBus({ redis: writerClient, prefix })
    await bus.ready()
  })
  afterAll(async () => {
    await bus?.close()
    for (const client of [raw, writerClient, fillerClient, plainClient]) client?.disconnect()
    await server?.stop()
  })

  /** From now on Redis refuses every command that may grow memory (a script's first such write included); 0 lifts the limit. */
  const outOfMemory = (on: boolean) => raw.config('SET', 'maxmemory', on ? '1' : '0')

  function instances() {
    const name = `oom${++cacheNames}`
    const filler = counted(adapter.redisTier({ redis: fillerClient, prefix }))
    const caches = {
      name,
      names: bookkeepingNames(standaloneLayout(prefix, name)),
      entry: standaloneLayout(prefix, name).entry(STORE_KEY, ''),
      filler,
      fillerCache: createCache<string>({ name, invalidation: PLAN, tiers: [filler.tier], ttl: '1h', onError: () => {} }),
      writer: createCache<string>({
        name,
        invalidation: PLAN,
        tiers: [memoryTier(), adapter.redisTier({ redis: writerClient, prefix })],
        bus,
        ttl: '1h',
        onError: () => {},
      }),
      plain: createCache<string>({ name, invalidation: PLAN, tiers: [adapter.redisTier({ redis: plainClient, prefix })], ttl: '1h', onError: () => {} }),
    }
    return caches
  }

  it.each(KINDS)('%s resolves while Redis is out of memory, and the fill begun before it is refused', async (kind) => {
    const { name, names, filler, fillerCache, writer, plain } = instances()
    try {
      await writer.namespace(NAMESPACE).set(siblingOf(standaloneLayout(prefix, name)), 'sibling', { tags: [TAG] }) // tag versions exist
      let database = 0
      const started = deferred()
      const gate = deferred()
      const fill = fillerCache.namespace(NAMESPACE).getOrSet(
        ITEM,
        async () => {
          const value = `v${database}`
          started.resolve()
          await gate.promise
          return value
        },
        { tags: [TAG] },
      )
      await started.promise
      expect(await raw.exists(names.lease)).toBe(1)
      await outOfMemory(true)
      try {
        await expect(raw.set('probe', 'x')).rejects.toThrow(/OOM/) // Redis is refusing writes indeed
        database = 1
        await invalidate(writer, kind) // resolves: an invalidation that cannot write its new value deletes the old one
        if (kind === 'clear') expect(await raw.exists(names.generation)).toBe(0) // its first write was refused: deleted instead
        gate.resolve()
        expect(await fill).toBe('v0')
      } finally {
        await outOfMemory(false)
      }
      expect(await plain.namespace(NAMESPACE).get(ITEM)).toBeUndefined()
      expect(await plain.namespace(NAMESPACE).getOrSet(ITEM, async () => `v${database}`, { tags: [TAG] })).toBe('v1')
      expect(filler.counters().fillsRefused).toBe(1) // refused by its scope, before any write
    } finally {
      await Promise.all([fillerCache.close(), writer.close(), plain.close()])
    }
  })

  it('a miss takes no lease and stores nothing; a fill whose store is refused gives its lease back', async () => {
    const { name, names, entry, filler, fillerCache, writer, plain } = instances()
    try {
      // A fill that took its lease before Redis ran out of memory, and stores after.
      const started = deferred()
      const gate = deferred()
      const fill = fillerCache.namespace(NAMESPACE).getOrSet(
        ITEM,
        async () => {
          started.resolve()
          await gate.promise
          return 'computed before'
        },
        { tags: [TAG] },
      )
      await started.promise
      await outOfMemory(true)
      try {
        gate.resolve()
        expect(await fill).toBe('computed before') // its caller has it; Redis has nothing
        expect(await raw.exists(entry, names.lease)).toBe(0)
        // A miss now: no lease can be had, so the value is computed and not stored.
        expect(await fillerCache.namespace(NAMESPACE).getOrSet('other', async () => 'computed during', { tags: [TAG] })).toBe('computed during')
        const other = standaloneLayout(prefix, name)
        expect(await raw.exists(other.entry(`${NAMESPACE}${NAMESPACE_SEPARATOR}other`, ''), other.lease(`${NAMESPACE}${NAMESPACE_SEPARATOR}other`, ''))).toBe(0)
        expect(filler.counters().fillsWithoutLease).toBe(1)
      } finally {
        await outOfMemory(false)
      }
      expect(await plain.namespace(NAMESPACE).getOrSet('other', async () => 'after', { tags: [TAG] })).toBe('after')
    } finally {
      await Promise.all([fillerCache.close(), writer.close(), plain.close()])
    }
  })

  it('a set that Redis refuses rejects, and leaves a miss, never the older value it was meant to replace', async () => {
    const { entry, fillerCache, writer, plain } = instances()
    try {
      await writer.namespace(NAMESPACE).set(ITEM, 'older', { tags: [TAG] })
      expect(await plain.namespace(NAMESPACE).get(ITEM)).toBe('older')
      await outOfMemory(true)
      try {
        await expect(writer.namespace(NAMESPACE).set(ITEM, 'newer', { tags: [TAG] })).rejects.toThrow(/OOM/)
        expect(await plain.namespace(NAMESPACE).get(ITEM)).toBeUndefined()
        expect(await raw.exists(entry)).toBe(0)
      } finally {
        await outOfMemory(false)
      }
    } finally {
      await Promise.all([fillerCache.close(), writer.close(), plain.close()])
    }
  })
})
