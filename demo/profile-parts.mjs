// The pieces profile.mjs builds its runs from: a seeded workload, a fake
// database that remembers when each update completed, an L2 wrapper that adds
// the network hop and counts the calls, and a bus wrapper that counts the
// invalidations an L1-only cache publishes.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A small seeded generator (mulberry32), so every setup of one run sees the same requests. */
export function seeded(seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

/**
 * The operations of one run, in order: `requests` reads, with updates mixed
 * in. A read is one user's request: the user, the user's saved filters, one
 * of those filters, and the permissions of the user's role. Users are drawn
 * uniformly from a large pool, so most keys come up once or twice a run;
 * roles are few and skewed (a handful of hot keys). Each user's requests and
 * updates go to one instance (session affinity) unless `affinity` is false;
 * role updates come from any.
 */
export function workload(p, seed) {
  const random = seeded(seed)
  const roleOf = Array.from({ length: p.users }, () => Math.floor(p.roles * random() ** 2))
  const ops = []
  let reads = 0
  while (reads < p.requests) {
    const user = Math.floor(p.users * random())
    const filter = random() < p.defaultFilterShare ? 0 : 1 + Math.floor((p.filtersPerUser - 1) * random())
    const draw = random()
    const home = p.affinity ? user % p.instances : Math.floor(p.instances * random())
    if (draw < p.userUpdateShare) ops.push({ kind: 'update', instance: home, cache: 'users', keys: [`user:${user}`] })
    else if (draw < p.userUpdateShare + p.filterUpdateShare) {
      ops.push({ kind: 'update', instance: home, cache: 'filters', keys: [`filters:${user}`, `filter:${user}:${filter}`] })
    } else if (draw < p.userUpdateShare + p.filterUpdateShare + p.roleUpdateShare) {
      const role = Math.floor(p.roles * random() ** 2)
      ops.push({ kind: 'update', instance: Math.floor(p.instances * random()), cache: 'permissions', keys: [`perms:${role}`] })
    } else {
      reads++
      ops.push({ kind: 'read', instance: home, user, filter, role: roleOf[user] })
    }
  }
  return ops
}

/**
 * The "database": a version per key, and per key each completed update
 * (database write and cache invalidation both done) as [version, completedAt].
 */
export function makeDatabase() {
  const versions = new Map()
  const completed = new Map()
  return {
    /** The newest version of `key` whose update had completed by `asOf` (performance.now() time). */
    completedVersion(key, asOf) {
      let newest = 0
      for (const [version, at] of completed.get(key) ?? []) if (at <= asOf && version > newest) newest = version
      return newest
    },
    /** Writes a new version; call the returned function once the caches have been told. */
    update(key) {
      const version = (versions.get(key) ?? 0) + 1
      versions.set(key, version)
      return () => {
        const list = completed.get(key) ?? []
        list.push([version, performance.now()])
        completed.set(key, list)
      }
    },
    /** A query (or computation) of `ms` that answers the key's current version. */
    async query(key, ms) {
      const version = versions.get(key) ?? 0
      await sleep(ms)
      return { key, version }
    },
  }
}

/** Calls that go to Redis (or would): each adds the hop and counts once. */
const ROUND_TRIPS = ['get', 'getMany', 'readForFill', 'releaseLease', 'set', 'delete', 'clear', 'invalidateTags', 'probe']
/** Members that send nothing (or manage the connection): passed through as they are. */
const PASS_THROUGH = ['canPublishVia', 'available', 'onConnectionChange', 'ready', 'counters']

/**
 * A shared tier with a network hop of `hopMs` before each call, counting the
 * calls in `calls` (`count`, and `probes` among them). Wraps the in-process
 * memoryStore (so the lesson shows without Redis) and redisTier alike: on
 * loopback Redis answers in ~0.1 ms, and the hop stands in for the network
 * between a service and its Redis. A tier without a probe gets one (a bare
 * hop, as a PING would be), so observe mode can measure the round trip.
 */
export function hopTier(tier, hopMs, calls) {
  return {
    kind: 'shared',
    name: `${tier.name}+hop`,
    ...(tier.deployment === undefined ? {} : { deployment: tier.deployment }),
    bind(scope) {
      const bound = tier.bind(scope)
      const wrapped = { close: () => bound.close() }
      for (const name of ROUND_TRIPS) {
        if (typeof bound[name] !== 'function') continue
        wrapped[name] = async (...args) => {
          calls.count++
          if (name === 'probe') calls.probes++
          await sleep(hopMs)
          return bound[name](...args)
        }
      }
      wrapped.probe ??= async () => {
        calls.count++
        calls.probes++
        await sleep(hopMs)
      }
      for (const name of PASS_THROUGH) if (typeof bound[name] === 'function') wrapped[name] = bound[name].bind(bound)
      return wrapped
    },
  }
}

/**
 * The in-process bus, counting each publish in `calls`: on Redis an L1-only
 * cache's invalidation is a PUBLISH of its own (an L1+L2 cache's rides in its
 * L2 write, counted there), so the in-process runs count what Redis would.
 */
export function countingBus(bus, calls) {
  return {
    join(member) {
      const membership = bus.join(member)
      return {
        publish: async (invalidations) => {
          calls.count++
          calls.publishes++
          return membership.publish(invalidations)
        },
        leave: () => membership.leave(),
        trust: membership.trust,
        maxStalenessMs: membership.maxStalenessMs,
      }
    },
    status: () => bus.status(),
    close: async () => {},
  }
}

export function percentile(sorted, q) {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}
