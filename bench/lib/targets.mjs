// The issue's targets, checked against one run's results. Each check says
// what was measured, the bar, and met / not met; a missing scenario is "not run".
const fmt = (n, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a')
const OTHERS = ['bentocache', 'cacheable', 'cache-manager']
/** tiercache's configurations in the propagation scenario, as its results name them and as the checks say them. */
const PROPAGATION_CONFIGS = [
  ['tiercache', 'tiercache'],
  ['tiercache-carry', 'tiercache (carryValues)'],
]

/** The configuration of tiercache with the lowest propagation p99 (median of the runs): { key, label, result }, or undefined. */
function bestPropagation(p) {
  const run = PROPAGATION_CONFIGS.filter(([key]) => Number.isFinite(p[key]?.p99Ms)).map(([key, label]) => ({ key, label, result: p[key] }))
  return run.sort((a, b) => a.result.p99Ms - b.result.p99Ms)[0]
}

export function checkTargets(r) {
  const checks = []
  const add = (target, measured, met) => checks.push({ target, measured, met })
  const l1 = r['l1-hit']
  const l2 = r['l2-hit']
  if (l1) {
    const spread = l1.tiercache.ratioSpread
    add(
      'L1 hit ≤ 2.5x the awaited async lru-cache get (stats on)',
      `${fmt(l1.tiercache.ratio)}x${spread ? ` (rounds ${fmt(spread[0])}–${fmt(spread[1])}x)` : ''}`,
      l1.tiercache.ratio <= 2.5,
    )
    const leads = OTHERS.filter((o) => l1[o]).map((o) => l1[o].ns / l1.tiercache.ns)
    add('L1 hit ≥ 2x faster than every contestant', `${fmt(Math.min(...leads), 1)}x faster than the fastest of them`, Math.min(...leads) >= 2)
  }
  if (l2) {
    const t = l2.tiercache
    add(
      'L2 hit, 1 caller ≤ 1.15x ioredis GET + decode',
      `${fmt(t.latencyRatio)}x (segments ${fmt(t.latencyRatioSpread[0])}–${fmt(t.latencyRatioSpread[1])}x; +${fmt(t.addedNs / 1000, 1)} µs on a ${fmt(l2.latencyBaselineNs / 1000, 1)} µs GET)`,
      t.latencyRatio <= 1.15,
    )
    add(
      'L2 hit, 64 callers ≥ 0.9x auto-pipelined ioredis throughput',
      `${fmt(t.vsPipelined)}x (rounds ${fmt(t.vsPipelinedSpread[0])}–${fmt(t.vsPipelinedSpread[1])}x; client CPU per op ${fmt(l2.pipelinedCpuUsPerOp / t.cpuUsPerOp)}x)`,
      t.vsPipelined >= 0.9,
    )
    const leads = OTHERS.filter((o) => l2[o]).map((o) => l2.tiercache.opsPerSec / l2[o].opsPerSec)
    add('L2 hit, 64 callers ≥ 2x every contestant', `${fmt(Math.min(...leads))}x the best of them`, Math.min(...leads) >= 2)
  }
  const p = r.propagation
  if (p) {
    // Every configuration run: the p99 below may be claimed with either, so neither may serve stale reads.
    const configs = PROPAGATION_CONFIGS.filter(([key]) => p[key] && !p[key].error)
    add(
      'Zero stale reads after 50 ms (scenario 5)',
      configs.map(([key, label]) => `${p[key].staleAfter50ms} stale reads (${label})`).join('; ') || 'n/a',
      configs.length > 0 && configs.every(([key]) => p[key].staleAfter50ms === 0),
    )
    const best = bestPropagation(p)
    const runs = best?.result.p99Runs?.filter(Number.isFinite) ?? []
    const others = PROPAGATION_CONFIGS.filter(([key]) => key !== best?.key && Number.isFinite(p[key]?.p99Ms)).map(
      ([key, label]) => `; ${label}: ${fmt(p[key].p99Ms)} ms`,
    )
    add(
      'Propagation p99 < 2 ms (median of 5 runs)',
      best
        ? `${fmt(best.result.p99Ms)} ms with ${best.label}${others.length > 0 ? ', the better configuration' : ''} (median of ${best.result.p99Runs?.length ?? 1} runs${runs.length > 0 ? `, runs ${fmt(Math.min(...runs))}–${fmt(Math.max(...runs))} ms` : ''})${others.join('')}`
        : 'n/a',
      best !== undefined && best.result.p99Ms < 2,
    )
  }
  const m = r.memory
  if (m)
    add(
      'L1 memory per entry ≤ 1.3x lru-cache holding the same objects',
      `${fmt(m.tiercache.vsLru)}x (${fmt(m.tiercache.heapPerEntry, 0)} B vs ${fmt(m['lru-cache'].heapPerEntry, 0)} B)`,
      m.tiercache.vsLru <= 1.3,
    )
  if (m)
    add(
      'L1 RSS growth for the same entries ≤ 1.3x lru-cache’s',
      `${fmt(m.tiercache.rssVsLru)}x (${fmt(m.tiercache.rssBytes / 2 ** 20, 1)} MiB vs ${fmt(m['lru-cache'].rssBytes / 2 ** 20, 1)} MiB)`,
      m.tiercache.rssVsLru <= 1.3,
    )

  // "Never slower on any scenario": one headline figure per scenario, lower or higher is better.
  const slower = []
  // `mine`: tiercache's result to compare (default: results.tiercache); `label` names it when it is another configuration.
  const compare = (scenario, label, get, higherIsBetter = false, mine = r[scenario]?.tiercache) => {
    const results = r[scenario]
    if (!mine) return
    for (const other of OTHERS) {
      if (!results[other]) continue
      const ours = get(mine)
      const theirs = get(results[other])
      if (!Number.isFinite(ours) || !Number.isFinite(theirs)) continue
      if (higherIsBetter ? ours < theirs : ours > theirs) slower.push(`${label}: ${other}`)
    }
  }
  compare('l1-hit', 'L1 hit', (x) => x.ns)
  compare('l2-hit', 'L2 hit 1 caller', (x) => x.ns)
  compare('l2-hit', 'L2 hit 64 callers', (x) => x.opsPerSec, true)
  compare('miss', 'miss overhead', (x) => x.overheadMs)
  compare('stampede', 'stampede factory calls', (x) => x.factoryCalls)
  if (p) {
    // The lower p99 of tiercache's configurations (with carryValues or not), named in the text.
    const best = bestPropagation(p)
    compare('propagation', `propagation p99 (${best?.label ?? 'tiercache'})`, (x) => x.p99Ms, false, best?.result ?? p.tiercache)
  }
  compare('propagation', 'stale reads after 50 ms', (x) => x.staleAfter50ms)
  compare('memory', 'L1 heap per entry', (x) => x.heapPerEntry)
  compare('mixed', 'mixed load ops/s', (x) => x.opsPerSec, true)
  if (Object.keys(r).length > 0) {
    add('Never slower than a contestant on any scenario', slower.length === 0 ? 'slower nowhere' : `slower on: ${slower.join('; ')}`, slower.length === 0)
  }
  return checks
}
