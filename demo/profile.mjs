// Profile first, cache second: the seed scenario, run four ways.
//
// A small service answers requests with a 5 ms user query and a 35 ms
// permissions computation, on 3 instances, with 10 % of requests updating a
// user. It runs with no cache, with everything cached in L2 only, with
// everything in L1+L2, and as the advisor recommends after a warm-up; then
// prints a table and writes demo/report.html.
import { writeFileSync } from 'node:fs'
import { adviseAll, createCache, formatAdvice } from '@tiercache/core'
import { memoryBus, memoryStore, memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const USERS = 40
const REQUESTS = 600
const CONCURRENCY = 12
/** In-process runs add this to every L2 call, as a network hop to Redis would. */
const SIMULATED_L2_HOP_MS = 3

/** An in-process shared tier with a simulated network hop, so the lesson shows without Redis. */
function slowStore(store, hopMs) {
  return {
    kind: 'shared',
    name: 'memory-store+hop',
    bind(scope) {
      const bound = store.bind(scope)
      const hop =
        (fn) =>
        async (...args) => {
          await sleep(hopMs)
          return fn(...args)
        }
      return {
        get: hop(bound.get.bind(bound)),
        getMany: hop(bound.getMany.bind(bound)),
        readForFill: hop(bound.readForFill.bind(bound)),
        releaseLease: hop(bound.releaseLease.bind(bound)),
        set: hop(bound.set.bind(bound)),
        delete: hop(bound.delete.bind(bound)),
        clear: hop(bound.clear.bind(bound)),
        invalidateTags: hop(bound.invalidateTags.bind(bound)),
        close: () => bound.close(),
      }
    },
  }
}

/** The "database": versions per user, a 5 ms query, and a 35 ms computation. */
function makeDatabase() {
  const versions = new Map()
  /** Per user, each completed update (database write and cache invalidation) as [version, completedAt]. */
  const completed = new Map()
  return {
    /** The newest version whose update had completed by `asOf` (performance.now() time). */
    completedVersion: (id, asOf) => {
      let newest = 0
      for (const [version, at] of completed.get(id) ?? []) if (at <= asOf && version > newest) newest = version
      return newest
    },
    update: (id) => {
      const version = (versions.get(id) ?? 0) + 1
      versions.set(id, version)
      return () => {
        const list = completed.get(id) ?? []
        list.push([version, performance.now()])
        completed.set(id, list)
      }
    },
    queryUser: async (id) => {
      await sleep(5)
      return { id, name: `user ${id}`, version: versions.get(id) ?? 0 }
    },
    computePermissions: async (id) => {
      await sleep(35)
      return { id, roles: ['reader'], version: versions.get(id) ?? 0 }
    },
  }
}

/**
 * The coherence contract lets another instance serve its L1 copy until the
 * invalidation's pub/sub hop arrives (sub-ms on loopback, more on a loaded
 * machine); a read counts as stale only if the update it missed completed
 * longer ago than this. The in-process bus delivers synchronously: no allowance.
 */
const STALE_AFTER_MS = 50

function percentile(sorted, q) {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

/** Tiers for one cache per plan: 'none' | 'l2' | 'l1+l2' | 'l1'. */
function tiersFor(plan, env) {
  const l2 = () => (env.redisUrl ? redisTier({ redis: env.redisUrl, prefix: env.prefix }) : env.store)
  if (plan === 'l2') return [l2()]
  if (plan === 'l1') return [memoryTier()]
  return [memoryTier(), l2()]
}

async function runScenario(name, plans, env) {
  const db = makeDatabase()
  const buses = []
  const instances = []
  for (let i = 0; i < 3; i++) {
    const bus = env.redisUrl ? redisBus({ redis: env.redisUrl, prefix: env.prefix }) : env.bus
    if (env.redisUrl) buses.push(bus)
    const make = (cacheName, plan) =>
      plan === 'none'
        ? undefined
        : createCache({ name: `${cacheName}-${env.run}`, tiers: tiersFor(plan, env), bus, ttl: '1m', invalidation: { on: ['user.updated'] } })
    instances.push({ users: make('users', plans.users), permissions: make('permissions', plans.permissions) })
  }
  await Promise.all(buses.map((bus) => bus.ready()))

  const latencies = []
  let staleReads = 0
  let served = 0
  const pickUser = () => Math.floor(USERS * Math.random() ** 2) // a few hot users, a long tail
  async function request(n) {
    const instance = instances[n % instances.length]
    const id = pickUser()
    const started = performance.now()
    if (Math.random() < 0.1) {
      const done = db.update(id)
      await instance.users?.delete(`user:${id}`)
      await instance.permissions?.delete(`perms:${id}`)
      done()
    } else {
      // Stale: older than an update that had fully completed before this read
      // began — with Redis, more than one pub/sub hop before (the contract's
      // window without faults; see STALE_AFTER_MS).
      const expected = db.completedVersion(id, started - (env.redisUrl ? STALE_AFTER_MS : 0))
      const user = instance.users ? await instance.users.getOrSet(`user:${id}`, () => db.queryUser(id)) : await db.queryUser(id)
      const perms = instance.permissions ? await instance.permissions.getOrSet(`perms:${id}`, () => db.computePermissions(id)) : await db.computePermissions(id)
      if (user.version < expected || perms.version < expected) staleReads++
    }
    latencies.push(performance.now() - started)
    served++
  }
  let next = 0
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS) await request(next++)
    }),
  )
  const caches = instances.flatMap((i) => [i.users, i.permissions]).filter(Boolean)
  const stats = caches.map((c) => c.stats())
  const hits = stats.reduce((sum, s) => sum + s.l1Hits + s.l2Hits, 0)
  const lookups = hits + stats.reduce((sum, s) => sum + s.factoryCalls, 0)
  const l2Calls = stats.reduce((sum, s) => sum + s.l2Latency.count, 0)
  latencies.sort((a, b) => a - b)
  const result = {
    name,
    plans,
    meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    p95Ms: percentile(latencies, 0.95),
    hitRate: lookups === 0 ? 0 : hits / lookups,
    l2CallsPerRequest: l2Calls / served,
    staleReads,
    advice: adviseAll(instances[0] ? [instances[0].users, instances[0].permissions].filter(Boolean) : []).advice,
  }
  await Promise.all(caches.map((c) => c.clear().catch(() => {})))
  await Promise.all(caches.map((c) => c.close()))
  await Promise.all(buses.map((bus) => bus.close()))
  return result
}

function html(results, adviceTable, mode) {
  const max = Math.max(...results.map((r) => r.p95Ms))
  const bar = (value, color) => `<div style="background:${color};width:${Math.max(1, (value / max) * 100).toFixed(1)}%;height:14px"></div>`
  const rows = results
    .map(
      (r) =>
        `<tr><td>${r.name}</td><td>${r.meanMs.toFixed(1)}</td><td>${r.p95Ms.toFixed(1)}</td><td>${(r.hitRate * 100).toFixed(0)} %</td><td>${r.l2CallsPerRequest.toFixed(2)}</td><td>${r.staleReads}</td><td style="width:40%">${bar(r.meanMs, '#4c78a8')}${bar(r.p95Ms, '#f58518')}</td></tr>`,
    )
    .join('\n')
  return `<!doctype html><meta charset="utf-8"><title>tiercache: profile first, cache second</title>
<style>body{font:14px system-ui;margin:2em;max-width:70em}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>
<h1>Profile first, cache second</h1>
<p>${REQUESTS} requests on 3 instances (${mode}); a 5 ms user query and a 35 ms permissions computation; 10 % of requests update a user. Bars: <span style="color:#4c78a8">mean</span> and <span style="color:#f58518">p95</span> response time.</p>
<table><tr><th>run</th><th>mean ms</th><th>p95 ms</th><th>hit rate</th><th>L2 calls / request</th><th>stale reads</th><th></th></tr>
${rows}</table>
<h2>The advisor's report (after the L1+L2 run)</h2><pre>${adviceTable.replace(/</g, '&lt;')}</pre>`
}

export async function profileDemo({ redisUrl, reportPath }) {
  const env = {
    redisUrl,
    prefix: 'tiercache-demo-profile',
    store: redisUrl ? undefined : slowStore(memoryStore(), SIMULATED_L2_HOP_MS),
    bus: redisUrl ? undefined : memoryBus(),
    run: 0,
  }
  const mode = redisUrl ? `Redis at ${redisUrl}` : `in-process store with a simulated ${SIMULATED_L2_HOP_MS} ms L2 hop`
  const results = []
  const scenarios = [
    ['no cache', { users: 'none', permissions: 'none' }],
    ['everything in Redis (L2 only)', { users: 'l2', permissions: 'l2' }],
    ['everything in L1+L2', { users: 'l1+l2', permissions: 'l1+l2' }],
  ]
  for (const [name, plans] of scenarios) {
    env.run++
    results.push(await runScenario(name, plans, env))
  }
  // The advisor's recommendations, from the L1+L2 run.
  const advice = results[2].advice
  const planFrom = (recommendation) => (recommendation === 'do-not-cache' ? 'none' : recommendation === 'l1-only' ? 'l1' : 'l1+l2')
  const byCache = Object.fromEntries(advice.map((a) => [a.cache.replace(/-\d+$/, ''), planFrom(a.recommendation)]))
  env.run++
  results.push(await runScenario('as the advisor recommends', { users: byCache.users ?? 'l1+l2', permissions: byCache.permissions ?? 'l1+l2' }, env))

  const adviceTable = formatAdvice(advice)
  const table = [
    '| run | tiers (users / permissions) | mean ms | p95 ms | hit rate | L2 calls / request | stale reads |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...results.map(
      (r) =>
        `| ${r.name} | ${r.plans.users} / ${r.plans.permissions} | ${r.meanMs.toFixed(1)} | ${r.p95Ms.toFixed(1)} | ${(r.hitRate * 100).toFixed(0)} % | ${r.l2CallsPerRequest.toFixed(2)} | ${r.staleReads} |`,
    ),
  ].join('\n')
  if (reportPath) writeFileSync(reportPath, html(results, adviceTable, mode))
  return { results, table, adviceTable, mode }
}
