// profile.mjs's tables (Markdown, for the console and the README) and its
// HTML report (inline CSS bars, no external assets).

const CACHES = ['users', 'filters', 'permissions']
const ORDER = ['none', 'l2', 'observe', 'advised', 'both']
const TIER_TEXT = { none: '—', l2: 'L2', l1: 'L1', 'l1+l2': 'L1+L2' }

const pct = (rate) => (rate === undefined ? '—' : `${(rate * 100).toFixed(1)} %`)
const ms = (value) => (value === undefined ? '—' : value.toFixed(1))
const signedMs = (value) => (value === undefined ? '—' : `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(1)}`)
const planText = (plans) => CACHES.map((name) => TIER_TEXT[plans[name].tiers] + (plans[name].maxEntries ? ` (${plans[name].maxEntries})` : '')).join(' / ')
const callsText = (r) => r.redisCallsPerRequest.toFixed(2) + (r.probesPerRequest > 0 ? ` (${r.probesPerRequest.toFixed(2)} probes)` : '')

/** One run: the setups, the advice from observe mode, and predictions next to measurements. */
export function runTables(run) {
  const r = run.results
  const setups = [
    '| run | users / filters / permissions | mean ms | p95 ms | Redis calls / request | hit rate | stale reads |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...ORDER.map((key, i) => {
      const s = r[key]
      const hit = s.mode === 'observe' ? `(${pct(overallPredicted(s))} predicted)` : pct(s.hitRate)
      return `| ${i + 1}. ${s.label} | ${planText(s.plans)} | ${ms(s.meanMs)} | ${ms(s.p95Ms)} | ${callsText(s)} | ${hit} | ${s.staleReads} |`
    }),
  ]
  const advice = [
    '| cache | advice (per instance) | why (the instance with most lookups) | factory p50 | L2 p50 (probed) | hottest 1 % of keys |',
    '| --- | --- | --- | ---: | ---: | ---: |',
    ...CACHES.map((name) => {
      const o = r.observe.perCache[name]
      return `| ${name} | ${o.recommendation} (${o.recommendations.join(', ')}) | ${o.reason} | ${o.factoryP50Ms.toFixed(2)} ms | ${o.l2P50Ms.toFixed(2)} ms | ${pct(o.hottestKeysShare)} of lookups |`
    }),
  ]
  const compare = [
    '| cache | predicted hit rate (L1) | measured: L1+L2 run | measured: advised run | predicted saving ms / lookup | measured: L1+L2 run | measured: advised run |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...CACHES.map((name) => {
      const o = r.observe.perCache[name]
      const b = r.both.perCache[name]
      const a = r.advised.perCache[name]
      const advisedHit = a.lookups > 0 ? `${pct(a.hitRate)} (${TIER_TEXT[a.plan.tiers]})` : 'not cached'
      const advisedSaving = a.lookups > 0 ? signedMs(a.savingMs) : 'not cached'
      return `| ${name} | ${pct(o.predictedHitRate)} (${pct(o.predictedL1HitRate)}) | ${pct(b.hitRate)} | ${advisedHit} | ${signedMs(o.predictedSavingMs)} | ${signedMs(b.savingMs)} | ${advisedSaving} |`
    }),
  ]
  const legend = [
    'hit rate: lookups a tier answered (L1 or L2) over all lookups of the cached queries, every cache together.',
    "Redis calls: every L2 call (reads, writes, leases; observe mode: its round-trip probes) and every PUBLISH sent on its own; the buses' liveness probes are not counted.",
  ].join('\n')
  const compareLegend = [
    "predicted hit rate: the advisor's, for the cache as configured (L1+L2), p1 + (1 − p1) × p2 from L1's ghost and L2's, weighted by each instance's lookups; L1's alone in brackets, compared with an L1-only cache.",
    "saving per lookup: predicted, the advisor's savedMsPerLookup (for L1+L2: run 5's setup); measured, the query's mean time in run 1 minus the cached lookup's mean time.",
  ].join('\n')
  return [
    `${setups.join('\n')}\n\n${legend}`,
    'The advisor, after observe mode (run 3), all 3 instances:',
    advice.join('\n'),
    'Predicted (run 3) and measured:',
    `${compare.join('\n')}\n\n${compareLegend}`,
  ].join('\n\n')
}

/** Observe mode's predicted hit rate over every cache, weighted by lookups. */
function overallPredicted(s) {
  const caches = CACHES.map((name) => s.perCache[name]).filter((c) => c.lookups > 0)
  const lookups = caches.reduce((sum, c) => sum + c.lookups, 0)
  return caches.reduce((sum, c) => sum + c.lookups * c.predictedHitRate, 0) / Math.max(1, lookups)
}

function range(values, format) {
  const defined = values.filter((v) => v !== undefined)
  if (defined.length === 0) return '—'
  const low = format(Math.min(...defined))
  const high = format(Math.max(...defined))
  return low === high ? low : `${low} – ${high}`
}

const row = (cells) => `| ${cells.join(' | ')} |`
const decimals2 = (v) => v.toFixed(2)

/** Every figure's min–max over several runs. */
export function rangesTable(runs) {
  const setups = [
    '| run | mean ms | p95 ms | Redis calls / request | hit rate | stale reads |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...ORDER.map((key, i) => {
      const all = runs.map((run) => run.results[key])
      const over = (pick, format) => range(all.map(pick), format)
      const hit = all[0].mode === 'observe' ? `(${over(overallPredicted, pct)} predicted)` : over((s) => s.hitRate, pct)
      const label = key === 'advised' ? 'the advice applied' : all[0].label
      return row([
        `${i + 1}. ${label}`,
        over((s) => s.meanMs, ms),
        over((s) => s.p95Ms, ms),
        over((s) => s.redisCallsPerRequest, decimals2),
        hit,
        over((s) => s.staleReads, String),
      ])
    }),
  ]
  const caches = [
    '| cache | advice | predicted hit rate | measured: L1+L2 run | measured: advised run | predicted saving ms / lookup | measured: L1+L2 run |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...CACHES.map((name) => {
      const over = (key, pick, format) =>
        range(
          runs.map((run) => pick(run.results[key].perCache[name])),
          format,
        )
      const advice = [...new Set(runs.map((run) => run.results.observe.perCache[name].recommendation))].join(', ')
      const cached = runs.some((run) => run.results.advised.perCache[name].lookups > 0)
      return row([
        name,
        advice,
        over('observe', (c) => c.predictedHitRate, pct),
        over('both', (c) => c.hitRate, pct),
        cached ? over('advised', (c) => c.hitRate, pct) : 'not cached',
        over('observe', (c) => c.predictedSavingMs, signedMs),
        over('both', (c) => c.savingMs, signedMs),
      ])
    }),
  ]
  const failed = runs.map((run) => run.checks.filter((c) => !c.ok).length)
  return `${setups.join('\n')}\n\n${caches.join('\n')}\n\nFailed checks per run: ${failed.join(', ')}`
}

const escapeHtml = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;')

function bars(rows, max, format) {
  return rows
    .map(
      ({ label, values }) =>
        `<tr><td>${escapeHtml(label)}</td><td class="bars">${values
          .map(
            ({ value, color, title }) =>
              `<div class="row"><div class="bar" style="background:${color};width:${Math.max(0.5, (value / max) * 85).toFixed(1)}%"></div><span>${format(value)} ${escapeHtml(title)}</span></div>`,
          )
          .join('')}</td></tr>`,
    )
    .join('\n')
}

/** The report: the first run's charts and tables, and the ranges when there are several runs. */
export function html(runs, mode, p) {
  const r = runs[0].results
  const setups = ORDER.map((key, i) => ({ key, label: `${i + 1}. ${r[key].label}`, s: r[key] }))
  const maxMs = Math.max(...setups.map(({ s }) => s.p95Ms))
  const latency = bars(
    setups.map(({ label, s }) => ({
      label,
      values: [
        { value: s.meanMs, color: '#4c78a8', title: 'mean' },
        { value: s.p95Ms, color: '#f58518', title: 'p95' },
      ],
    })),
    maxMs,
    (v) => `${v.toFixed(1)} ms`,
  )
  const maxCalls = Math.max(...setups.map(({ s }) => s.redisCallsPerRequest))
  const calls = bars(
    setups.map(({ label, s }) => ({ label, values: [{ value: s.redisCallsPerRequest, color: '#e45756', title: '' }] })),
    maxCalls,
    (v) => v.toFixed(2),
  )
  const hits = bars(
    CACHES.map((name) => ({
      label: name,
      values: [
        { value: r.observe.perCache[name].predictedHitRate, color: '#b279a2', title: 'predicted (observe mode)' },
        { value: r.both.perCache[name].hitRate, color: '#54a24b', title: 'measured (L1+L2 run)' },
        ...(r.advised.perCache[name].lookups > 0 ? [{ value: r.advised.perCache[name].hitRate, color: '#72b7b2', title: 'measured (advised run)' }] : []),
      ],
    })),
    1,
    (v) => `${(v * 100).toFixed(1)} %`,
  )
  const markdown = runTables(runs[0]) + (runs.length > 1 ? `\n\nOver ${runs.length} runs (min–max):\n\n${rangesTable(runs)}` : '')
  return `<!doctype html><meta charset="utf-8"><title>tiercache: profile first, cache second</title>
<style>body{font:14px system-ui;margin:2em;max-width:75em}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left;vertical-align:top}
td.bars{width:70%}.row{display:flex;align-items:center;gap:.4em;margin:2px 0;font-size:12px;white-space:nowrap}.bar{height:14px;flex:none}pre{background:#f6f6f6;padding:1em;overflow:auto}.key span{padding:0 .5em;color:#fff}</style>
<h1>Profile first, cache second</h1>
<p>${escapeHtml(mode)}. ${p.requests} requests per setup on ${p.instances} instances (${p.concurrency} in flight); each request runs three ${p.queryMs} ms queries one after another, then the ${p.permissionsMs} ms permissions computation. ${runs.length > 1 ? `Charts: run 1 of ${runs.length} (seed ${runs[0].seed}).` : ''}</p>
<h2>Response time</h2><p class="key"><span style="background:#4c78a8">mean</span> <span style="background:#f58518">p95</span></p>
<table>${latency}</table>
<h2>Redis calls per request</h2><table>${calls}</table>
<h2>Hit rate: predicted in observe mode, then measured</h2><p class="key"><span style="background:#b279a2">predicted (observe mode)</span> <span style="background:#54a24b">measured, L1+L2 run</span> <span style="background:#72b7b2">measured, advised run</span></p>
<table>${hits}</table>
<h2>Tables</h2><pre>${escapeHtml(markdown)}</pre>`
}
