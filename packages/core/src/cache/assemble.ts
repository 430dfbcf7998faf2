/**
 * The read and write paths, built once per cache from its parts: the miss
 * path (load.ts) and the batch reads over it (batch.ts), or in observe mode
 * the observed reads (observe.ts) in their place, and the write path
 * (write.ts). The facade keeps what this returns and calls down into it.
 */
import type { BusMembership, PublishRoute } from '../contracts.js'
import type { HotKeys } from '../hot-keys.js'
import type { LatencyHistogram } from '../histogram.js'
import type { GroupProfiles } from '../profiles.js'
import { BatchReader } from './batch.js'
import type { CacheConfig } from './config.js'
import type { TierGhosts } from './ghost-index.js'
import { Loader } from './load.js'
import type { LocalState } from './local-state.js'
import { ObservedReads } from './observe.js'
import type { Reporter } from './report.js'
import type { SharedTierAccess } from './shared-tier.js'
import type { Counters } from './stats.js'
import { Writer } from './write.js'
import type { WriteRecovery } from './write-recovery.js'

export interface PathInputs<V> {
  readonly config: CacheConfig
  readonly instanceId: string
  readonly local: LocalState<V>
  readonly shared: SharedTierAccess | undefined
  readonly membership: BusMembership | undefined
  readonly atomicRoute: PublishRoute | undefined
  readonly recovery: WriteRecovery | undefined
  /** Observe mode's ghosts of the tiers. */
  readonly ghosts: TierGhosts | undefined
  readonly hotKeys: HotKeys
  readonly reporter: Reporter
  readonly counters: Counters
  readonly profiles: GroupProfiles
  readonly factoryLatency: LatencyHistogram
  readonly l2Latency: LatencyHistogram
  /** L1 hits found by batch reads: the facade counts them in a field of its own. */
  readonly countL1Hits: (hits: number) => void
}

export interface Paths<V> {
  readonly reads: Pick<Loader<V>, 'getOrSet' | 'get'>
  readonly batch: Pick<BatchReader<V>, 'getMany' | 'getOrSetMany'>
  readonly writer: Writer<V>
}

export function assemblePaths<V>(inputs: PathInputs<V>): Paths<V> {
  const { config, local, shared, recovery, ghosts, reporter, counters, factoryLatency, hotKeys } = inputs
  const name = config.name
  const policy = config.policy
  let writer: Writer<V> | undefined
  const loader = new Loader<V>({
    name,
    local,
    shared,
    reporter,
    counters,
    policy,
    autoPolicy: config.autoPolicy,
    profiles: inputs.profiles,
    factoryLatency,
    l2Latency: inputs.l2Latency,
    hotKeys,
    recovery,
    dropSharedCopy: (key) => writer!.dropSharedCopy(key),
  })
  const batch = new BatchReader<V>({ name, local, shared, loader, counters, policy, factoryLatency, countL1Hits: inputs.countL1Hits })
  writer = new Writer<V>({
    name,
    instanceId: inputs.instanceId,
    local,
    shared,
    membership: inputs.membership,
    atomicRoute: inputs.atomicRoute,
    policy,
    counters,
    reporter,
    recovery,
    observe: config.observe,
  })
  // Observe mode: reads run the factory every time and store nothing; the ghost predicts.
  // Observe mode measures the L2 hop with the tier's probe(), unless declared; a tier without probe() is
  // measured only by the deletes invalidations send it (declare `observe.l2RoundTrip` for those).
  const probed = config.declaredL2RoundTripMs === undefined && shared?.tier.probe !== undefined ? shared : undefined
  const observed = ghosts === undefined ? undefined : new ObservedReads<V>({ name, local, ghosts, probed, hotKeys, counters, policy, factoryLatency })
  return { reads: observed ?? loader, batch: observed ?? batch, writer }
}
