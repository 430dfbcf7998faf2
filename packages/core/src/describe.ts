/** How a cache's data becomes invalid, declared like an API contract. */
/**
 * A cache's invalidation plan (`createCache({ invalidation })`): how its data
 * becomes invalid, declared where the cache is defined and shown by
 * `describe()`. Documentation only: nothing here invalidates by itself.
 */
export interface InvalidationPlan {
  /** Domain events that invalidate it (documentation; wire them with `invalidateOn`). @defaultValue none */
  on?: readonly string[]
  /** Tags its values are written under. @defaultValue none */
  tags?: readonly string[]
  /** Namespaces (or key-template scopes) it invalidates by. @defaultValue none */
  namespaces?: readonly string[]
  /** True when the TTL alone bounds staleness, deliberately (no explicit invalidation). @defaultValue false */
  ttlOnly?: boolean
  /** Anything a reader of the plan should know. @defaultValue none */
  notes?: string
}

/** A plain description of one cache: what `describe()` returns. */
export interface CacheDescription {
  name: string
  tiers: string[]
  bus: boolean
  ttlMs: number
  negativeTtlMs: number
  graceMs: number
  /** `l1Ttl`: how long L1 keeps a value from its fill; undefined when L1 keeps what L2 keeps. */
  l1TtlMs?: number
  /** `refreshAhead`: the fraction of the TTL past which a hit starts one background refresh; undefined when off. */
  refreshAhead?: number
  maxStalenessMs: number
  /** What L1 serves while the bus is down (`onBusDown`): `'reuse'`, `'bypass-l1'`, or `serve-stale <ms>`. */
  onBusDown?: string
  /** `writeRecovery` on: failed invalidations are queued and replayed. */
  writeRecovery?: boolean
  keyTemplates: Array<{ template: string; scope: string | undefined }>
  invalidation: InvalidationPlan | undefined
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
const ms = (value: number) => (value === 0 ? '—' : value % 1000 === 0 ? `${value / 1000}s` : `${value}ms`)

function planText(plan: InvalidationPlan | undefined): string {
  if (plan === undefined) return '**none declared**'
  const parts: string[] = []
  if (plan.on !== undefined && plan.on.length > 0) parts.push(`on ${plan.on.map((e) => `\`${e}\``).join(', ')}`)
  if (plan.tags !== undefined && plan.tags.length > 0) parts.push(`tags ${plan.tags.map((t) => `\`${t}\``).join(', ')}`)
  if (plan.namespaces !== undefined && plan.namespaces.length > 0) parts.push(`namespaces ${plan.namespaces.map((n) => `\`${n}\``).join(', ')}`)
  if (plan.ttlOnly === true) parts.push('TTL only')
  if (plan.notes !== undefined) parts.push(plan.notes)
  return parts.join('; ')
}

/** A Markdown table of caches: keys/templates, TTL, grace, tiers, invalidation plan. */
export function describeMarkdown(descriptions: readonly CacheDescription[]): string {
  const lines = ['| cache | keys | TTL | grace | tiers | invalidation |', '| --- | --- | --- | --- | --- | --- |']
  for (const d of descriptions) {
    const keys =
      d.keyTemplates.length === 0
        ? 'free-form'
        : d.keyTemplates.map((k) => `\`${k.template}\`${k.scope === undefined ? '' : ` (scope \`${k.scope}\`)`}`).join('<br>')
    lines.push(
      `| ${cell(d.name)} | ${cell(keys)} | ${ms(d.ttlMs)}${d.l1TtlMs === undefined ? '' : ` (L1 ${ms(d.l1TtlMs)})`}${d.refreshAhead === undefined ? '' : `, refresh at ${Math.round(d.refreshAhead * 100)} %`} | ${ms(d.graceMs)} | ${cell(d.tiers.join(' + '))}${d.bus ? ' + bus' : ''} | ${cell(planText(d.invalidation))} |`,
    )
  }
  return lines.join('\n')
}

/** Describes several caches at once (e.g. every cache sharing a bus): plain objects and one Markdown table. */
export function describeCaches(caches: ReadonlyArray<{ describe(): CacheDescription & { markdown: string } }>): {
  caches: CacheDescription[]
  markdown: string
} {
  const descriptions = caches.map((cache) => {
    const { markdown: _markdown, ...description } = cache.describe()
    return description
  })
  return { caches: descriptions, markdown: describeMarkdown(descriptions) }
}
