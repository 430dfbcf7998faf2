// Profile first, cache second: one service, five setups, real measurements.
//
//   node demo/profile.mjs [--runs 5]                  in-process store and bus, a simulated 3 ms hop to L2
//   REDIS_URL=redis://… node demo/profile.mjs [--runs 5]   real Redis; the same 3 ms hop added on top
//
// A request runs three 5 ms queries one after another, as a naive handler
// would (the user, the user's saved filters, the filter it applies: many
// keys, rarely repeated), then the 35 ms permissions computation for the
// user's role (a few hot keys), on 3 instances, with updates. The setups:
// (1) no cache; (2) every database query through Redis, permissions
// uncached, as the founding essay's team did; (3) observe mode on the
// no-cache setup (caches configured L1+L2, `mode: 'observe'`), whose advice
// gives (4) the advised setup; and (5) L1+L2 for everything, for reference.
// Each run prints its tables and checks; --runs N repeats it with a new seed
// per run, prints the range of every figure and exits non-zero if any check
// failed. demo.mjs (section 7) runs it once; both write demo/report.html.
import { writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { createCache } from '@tiercache/core'
import { memoryBus, memoryStore, memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { countingBus, hopTier, makeDatabase, percentile, workload } from './profile-parts.mjs'
import { html, rangesTable, runTables } from './profile-report.mjs'

/**
 * The story's parameters. Why these values:
 * - users: 850, drawn uniformly, against 900 requests a run: most users come
 *   up once or twice, and over the three user and filter queries a key is
 *   found again in about a third of lookups — the essay's 34 % (the filter a
 *   request applies is the user's first in 80 % of requests, else one of 2 more).
 * - ttl: 1 minute, longer than any run: the hit rate comes from the draws, so
 *   it is the same however fast a setup answers (and the prediction made in
 *   one setup holds for another).
 * - roles: 8, skewed (role = ⌊8·r²⌋): a few hot keys for the 35 ms computation.
 * - updates: 2 % of operations update a user, 2 % a filter, 0.5 % a role's permissions.
 * - 5 ms queries, a 3 ms hop: the advisor moves a factory under 2 L2 round
 *   trips out of L2 (l1-only); timer lateness adds to both sides, so a
 *   loaded machine keeps 5 ms under 2 × 3 ms. The 35 ms computation is ~10
 *   round trips: worth L2.
 * - session affinity: a user's requests go to one instance. Observe mode
 *   predicts from each instance's own traffic; with affinity that is all the
 *   traffic a user's keys get (with `affinity: false`, one run predicted
 *   users at 13.7 % against 35.7 % measured with L1+L2, where L2 answers
 *   keys other instances filled).
 * - 12 requests in flight over 3 instances, 900 requests a run: each instance
 *   sees ~300 requests (the advisor needs 100 lookups), and a run of all five
 *   setups takes ~16 s.
 */
export const PARAMETERS = Object.freeze({
  instances: 3,
  /** A user's requests go to one instance (user id mod 3); false: each to a random one. */
  affinity: true,
  requests: 900,
  concurrency: 12,
  users: 850,
  filtersPerUser: 3,
  /** Share of requests that apply the user's first (default) filter. */
  defaultFilterShare: 0.8,
  roles: 8,
  queryMs: 5,
  permissionsMs: 35,
  /** The network hop added to every L2 call, in both modes. */
  hopMs: 3,
  ttl: '1m',
  l1MaxEntries: 10_000,
  userUpdateShare: 0.02,
  filterUpdateShare: 0.02,
  roleUpdateShare: 0.005,
})

/**
 * The coherence contract lets another instance serve its L1 copy until the
 * invalidation's pub/sub hop arrives (sub-ms on loopback, more on a loaded
 * machine): with Redis, a read is stale if it returned a version older than
 * an update that completed more than this long before the read began. The
 * in-process bus delivers synchronously: no allowance.
 */
const STALE_AFTER_MS = 50
const CACHES = ['users', 'filters', 'permissions']
const PERCENT_POINTS = 0.1

/** Plans per cache: { tiers: 'none' | 'l2' | 'l1' | 'l1+l2', maxEntries?, ttl? }. */
const all = (tiers) => Object.fromEntries(CACHES.map((name) => [name, { tiers }]))
const SETUPS = {
  none: { label: 'no cache', plans: all('none') },
  l2: { label: 'every query through Redis', plans: { users: { tiers: 'l2' }, filters: { tiers: 'l2' }, permissions: { tiers: 'none' } } },
  observe: { label: "observe mode (L1+L2, mode: 'observe')", plans: all('l1+l2'), mode: 'observe' },
  both: { label: 'L1+L2 everything', plans: all('l1+l2') },
}

/** What the advisor's recommendation means for a cache's plan. */
function planFor(recommendation, p) {
  if (recommendation === 'do-not-cache') return { tiers: 'none' }
  if (recommendation === 'l1-only') return { tiers: 'l1' }
  if (recommendation === 'raise-l1-size') return { tiers: 'l1+l2', maxEntries: p.l1MaxEntries * 4 }
  if (recommendation === 'raise-ttl') return { tiers: 'l1+l2', ttl: '4m' }
  return { tiers: 'l1+l2' }
}

function makeFleet(plans, mode, env, setupIndex) {
  const p = env.p
  const calls = { count: 0, probes: 0, publishes: 0 }
  const prefix = `tiercache-demo-profile-${env.seed}-${setupIndex}`
  const store = env.redisUrl ? undefined : hopTier(memoryStore(), p.hopMs, calls)
  const sharedBus = env.redisUrl ? undefined : memoryBus()
  const buses = []
  const instances = []
  for (let i = 0; i < p.instances; i++) {
    const bus = sharedBus ?? redisBus({ redis: env.redisUrl, prefix })
    if (!sharedBus) buses.push(bus)
    const caches = {}
    for (const name of CACHES) {
      const plan = plans[name]
      if (plan.tiers === 'none') continue
      const l2 = () => store ?? hopTier(redisTier({ redis: env.redisUrl, prefix }), p.hopMs, calls)
      const l1 = () => memoryTier({ maxEntries: plan.maxEntries ?? p.l1MaxEntries })
      const tiers = plan.tiers === 'l2' ? [l2()] : plan.tiers === 'l1' ? [l1()] : [l1(), l2()]
      // In-process, count the PUBLISH an L1-only cache's invalidation would be on Redis (redisBus counts its own).
      const cacheBus = sharedBus && plan.tiers === 'l1' ? countingBus(sharedBus, calls) : bus
      caches[name] = createCache({ name, tiers, bus: cacheBus, ttl: plan.ttl ?? p.ttl, mode, invalidation: { on: [`${name}.updated`] } })
    }
    instances.push(caches)
  }
  const published = () => buses.reduce((sum, bus) => sum + bus.status().messagesPublished, 0)
  return { instances, buses, calls, published }
}

/** One setup on its own fleet: every operation of `ops`, `concurrency` at a time. */
async function runSetup(key, setup, ops, env, setupIndex) {
  const p = env.p
  const fleet = makeFleet(setup.plans, setup.mode, env, setupIndex)
  await Promise.all(fleet.buses.map((bus) => bus.ready()))
  const publishedBefore = fleet.published()
  const db = makeDatabase()
  const latencies = []
  const lookupMs = Object.fromEntries(CACHES.map((name) => [name, { sum: 0, count: 0 }]))
  let staleReads = 0
  const allowance = env.redisUrl ? STALE_AFTER_MS : 0

  async function read(op, caches) {
    const started = performance.now()
    const lookups = [
      ['users', `user:${op.user}`, p.queryMs],
      ['filters', `filters:${op.user}`, p.queryMs],
      ['filters', `filter:${op.user}:${op.filter}`, p.queryMs],
      ['permissions', `perms:${op.role}`, p.permissionsMs],
    ]
    let stale = false
    for (const [name, key, ms] of lookups) {
      const expected = db.completedVersion(key, started - allowance)
      const began = performance.now()
      const value = caches[name] ? await caches[name].getOrSet(key, () => db.query(key, ms)) : await db.query(key, ms)
      lookupMs[name].sum += performance.now() - began
      lookupMs[name].count++
      if (value.version < expected) stale = true
    }
    if (stale) staleReads++
    latencies.push(performance.now() - started)
  }
  async function update(op, caches) {
    const done = op.keys.map((key) => db.update(key))
    for (const key of op.keys) await caches[op.cache]?.delete(key)
    for (const complete of done) complete()
  }

  let next = 0
  await Promise.all(
    Array.from({ length: p.concurrency }, async () => {
      while (next < ops.length) {
        const op = ops[next++]
        const caches = fleet.instances[op.instance]
        await (op.kind === 'read' ? read(op, caches) : update(op, caches))
      }
    }),
  )
  const redisCalls = fleet.calls.count + (env.redisUrl ? fleet.published() - publishedBefore : 0)
  const probes = fleet.calls.probes
  const perCache = Object.fromEntries(CACHES.map((name) => [name, cacheFigures(name, fleet.instances, setup.plans[name], lookupMs[name])]))
  const cached = Object.values(perCache).filter((c) => c.lookups > 0)
  const lookupsTotal = cached.reduce((sum, c) => sum + c.lookups, 0)
  latencies.sort((a, b) => a - b)
  const result = {
    key,
    label: setup.label,
    mode: setup.mode ?? 'normal',
    plans: setup.plans,
    meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    p95Ms: percentile(latencies, 0.95),
    redisCallsPerRequest: redisCalls / latencies.length,
    probesPerRequest: probes / latencies.length,
    hitRate: setup.mode === 'observe' || lookupsTotal === 0 ? undefined : cached.reduce((sum, c) => sum + c.hits, 0) / lookupsTotal,
    staleReads,
    perCache,
  }
  const caches = fleet.instances.flatMap((instance) => Object.values(instance))
  if (env.redisUrl) await Promise.all(caches.map((cache) => cache.clear().catch(() => {})))
  await Promise.all(caches.map((cache) => cache.close()))
  await Promise.all(fleet.buses.map((bus) => bus.close()))
  return result
}

/**
 * One cache's figures over the fleet. Hit rate: lookups a tier answered (L1
 * or L2) over all lookups of the cache (the advisor's `1 − misses / lookups`).
 * Observe mode: the advisor's prediction per instance, `p1 + (1 − p1) × p2`
 * (L1's ghost, then L2's on its misses), weighted by lookups.
 */
function cacheFigures(name, instances, plan, timing) {
  const meanLookupMs = timing.count === 0 ? 0 : timing.sum / timing.count
  const caches = instances.map((instance) => instance[name]).filter(Boolean)
  if (caches.length === 0) return { plan, lookups: 0, hits: 0, meanLookupMs }
  const stats = caches.map((cache) => cache.stats())
  const advice = caches.map((cache) => cache.advise())
  const lookups = advice.reduce((sum, a) => sum + a.numbers.lookups, 0)
  const weighted = (pick) => advice.reduce((sum, a) => sum + a.numbers.lookups * pick(a.numbers), 0) / Math.max(1, lookups)
  const figures = {
    plan,
    lookups,
    hits: stats.reduce((sum, s) => sum + Math.max(0, s.l1Hits + s.staleServed + s.refreshAheadHits + s.outageReuses + s.l1Misses - s.misses), 0),
    meanLookupMs,
    factoryCalls: stats.reduce((sum, s) => sum + s.factoryCalls, 0),
  }
  if (stats[0].mode !== 'observe') return { ...figures, hitRate: figures.hits / Math.max(1, lookups) }
  // The recommendation with the most lookups behind it, and every instance's.
  const votes = new Map()
  for (const a of advice) votes.set(a.recommendation, (votes.get(a.recommendation) ?? 0) + a.numbers.lookups)
  const recommendation = [...votes].sort((a, b) => b[1] - a[1])[0][0]
  return {
    ...figures,
    recommendation,
    recommendations: advice.map((a) => a.recommendation),
    reason: advice.filter((a) => a.recommendation === recommendation).sort((a, b) => b.numbers.lookups - a.numbers.lookups)[0].reason,
    predictedL1HitRate: weighted((n) => n.predictedHitRate ?? 0),
    predictedHitRate: weighted((n) => (n.predictedHitRate ?? 0) + (1 - (n.predictedHitRate ?? 0)) * (n.predictedL2HitRate ?? 0)),
    predictedSavingMs: weighted((n) => n.savedMsPerLookup),
    factoryP50Ms: weighted((n) => n.factoryP50Ms),
    l2P50Ms: weighted((n) => n.l2P50Ms),
    hottestKeysShare: weighted((n) => n.hottestKeysShare ?? 0),
  }
}

/** The five setups on one seed's workload. */
export async function profileRun({ redisUrl, seed = 1, parameters = PARAMETERS }) {
  const env = { redisUrl, seed, p: parameters }
  const ops = workload(parameters, seed)
  const results = {}
  let index = 0
  for (const key of ['none', 'l2', 'observe']) results[key] = await runSetup(key, SETUPS[key], ops, env, index++)
  const advised = Object.fromEntries(CACHES.map((name) => [name, planFor(results.observe.perCache[name].recommendation, parameters)]))
  results.advised = await runSetup('advised', { label: 'the advice applied', plans: advised }, ops, env, index++)
  results.both = await runSetup('both', SETUPS.both, ops, env, index++)
  for (const result of Object.values(results)) {
    for (const [name, figures] of Object.entries(result.perCache)) {
      if (figures.lookups > 0 && result.mode !== 'observe') figures.savingMs = results.none.perCache[name].meanLookupMs - figures.meanLookupMs
    }
  }
  return { seed, results, checks: checksOf(results) }
}

/** The thresholds, and what the story says besides; each { ok, what }. */
function checksOf(r) {
  const checks = []
  const check = (ok, what) => checks.push({ ok, what })
  const pct = (rate) => `${(rate * 100).toFixed(1)} %`
  const { none, l2, observe, advised, both } = r
  check(l2.meanMs > none.meanMs, `every query through Redis is slower than no cache (${l2.meanMs.toFixed(1)} vs ${none.meanMs.toFixed(1)} ms mean)`)
  const faster = 1 - advised.meanMs / none.meanMs
  check(
    faster >= 0.6,
    `the advice applied is at least 60 % faster than no cache (${pct(faster)}: ${advised.meanMs.toFixed(1)} vs ${none.meanMs.toFixed(1)} ms)`,
  )
  const fewer = 1 - advised.redisCallsPerRequest / l2.redisCallsPerRequest
  check(
    fewer >= 0.6,
    `it makes at least 60 % fewer Redis calls per request than every query through Redis (${pct(fewer)} fewer: ${advised.redisCallsPerRequest.toFixed(2)} vs ${l2.redisCallsPerRequest.toFixed(2)})`,
  )
  check((advised.hitRate ?? 0) > (l2.hitRate ?? 0), `and has a higher hit rate (${pct(advised.hitRate ?? 0)} vs ${pct(l2.hitRate ?? 0)})`)
  for (const name of CACHES) {
    const o = observe.perCache[name]
    const pairs = [[`L1+L2 run ${pct(both.perCache[name].hitRate)}`, o.predictedHitRate, both.perCache[name].hitRate]]
    const a = advised.perCache[name]
    if (a.lookups > 0 && a.plan.tiers === 'l1')
      pairs.push([`advised (L1 only) ${pct(a.hitRate)} vs L1 ${pct(o.predictedL1HitRate)}`, o.predictedL1HitRate, a.hitRate])
    if (a.lookups > 0 && a.plan.tiers === 'l1+l2') pairs.push([`advised ${pct(a.hitRate)}`, o.predictedHitRate, a.hitRate])
    const ok = pairs.every(([, predicted, measured]) => Math.abs(predicted - measured) <= PERCENT_POINTS)
    check(ok, `${name}: predicted hit rate ${pct(o.predictedHitRate)} within 10 points of the measured (${pairs.map(([text]) => text).join('; ')})`)
  }
  const expected = { users: ['l1-only', 'do-not-cache'], filters: ['l1-only', 'do-not-cache'], permissions: ['keep'] }
  const advice = CACHES.map((name) => `${name} ${observe.perCache[name].recommendation}`).join(', ')
  check(
    CACHES.every((name) => expected[name].includes(observe.perCache[name].recommendation)),
    `the advisor keeps the permissions and takes the 5 ms queries out of Redis (${advice})`,
  )
  const observed = CACHES.map((name) => observe.perCache[name])
  check(
    observed.every((c) => c.hits === 0 && c.factoryCalls === c.lookups),
    `observe mode ran every query itself and cached nothing (${observed.reduce((s, c) => s + c.factoryCalls, 0)} factory calls for as many lookups)`,
  )
  const runs = [none, l2, observe, advised, both]
  check(
    runs.every((run) => run.staleReads === 0),
    `no setup read a stale value (${runs.map((run) => run.staleReads).join(' / ')})`,
  )
  return checks
}

export function modeText(redisUrl, p = PARAMETERS) {
  return redisUrl
    ? `Redis at ${redisUrl}, with a simulated ${p.hopMs} ms hop added to every L2 call (loopback Redis answers in ~0.1 ms)`
    : `in-process store and bus, with a simulated ${p.hopMs} ms hop on every L2 call`
}

/** One run, as demo.mjs shows it: tables, checks, and the HTML report. */
export async function profileDemo({ redisUrl, reportPath, seed = 1 }) {
  const run = await profileRun({ redisUrl, seed })
  if (reportPath) writeFileSync(reportPath, html([run], modeText(redisUrl), PARAMETERS))
  return { ...run, tables: runTables(run, PARAMETERS), mode: modeText(redisUrl) }
}

async function main() {
  const at = process.argv.indexOf('--runs')
  const count = at === -1 ? 1 : Number(process.argv[at + 1])
  if (!Number.isSafeInteger(count) || count < 1) throw new Error('usage: node demo/profile.mjs [--runs N]')
  const redisUrl = process.env.REDIS_URL || undefined
  const p = PARAMETERS
  console.log(`Profile first, cache second — ${modeText(redisUrl)}`)
  console.log(
    `${p.requests} requests a run on ${p.instances} instances, ${p.concurrency} in flight; each: 3 × ${p.queryMs} ms queries, then ${p.permissionsMs} ms permissions\n`,
  )
  const runs = []
  let failed = 0
  for (let i = 0; i < count; i++) {
    const run = await profileRun({ redisUrl, seed: i + 1 })
    runs.push(run)
    console.log(`Run ${i + 1} of ${count} (seed ${run.seed})\n`)
    console.log(runTables(run, p))
    for (const { ok, what } of run.checks) console.log(`  ${ok ? '✔' : '✘'} ${what}`)
    failed += run.checks.filter((c) => !c.ok).length
    console.log('')
  }
  if (count > 1) console.log(`Over ${count} runs (min–max)\n\n${rangesTable(runs)}\n`)
  const reportPath = new URL('./report.html', import.meta.url).pathname
  writeFileSync(reportPath, html(runs, modeText(redisUrl), p))
  console.log(`Report with charts: ${reportPath}`)
  console.log(failed === 0 ? 'profile ok' : `profile FAILED: ${failed} check(s)`)
  process.exitCode = failed === 0 ? 0 : 1
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
