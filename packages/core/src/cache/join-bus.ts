/**
 * Joining the bus, once, at construction: which invalidations reach this
 * instance, which trust window (liveness, mechanism 3) governs its L1, and
 * whether its writes can publish in the same round trip as the L2 write
 * (mechanism 1's atomic route). A failed join undoes the bindings, so a
 * rejected `createCache` holds nothing open.
 */
import type { BoundSharedTier, BusMembership, BusTrust, Invalidation, PublishRoute, TierEntry } from '../contracts.js'
import { InvalidOptionError } from '../errors.js'
import { invalidationChannel, type InvalidationEvent } from '../events.js'
import type { CacheConfig } from './config.js'
import { ALWAYS_TRUSTED, type LocalState } from './local-state.js'

export interface JoinedBus {
  readonly membership: BusMembership | undefined
  readonly atomicRoute: PublishRoute | undefined
}

export function joinBus<V>(
  config: CacheConfig,
  instanceId: string,
  local: LocalState<V>,
  boundShared: BoundSharedTier | undefined,
  onInvalidation: (invalidation: Invalidation) => void,
): JoinedBus {
  const name = config.name
  let membership: BusMembership | undefined
  try {
    membership = config.bus?.join({
      instanceId,
      cacheName: name,
      onInvalidation,
      // Values carried on the bus (redisBus carryValues) enter L1 only as a
      // guarded fill (local-state.ts fillCarried). Not in observe mode (its L1
      // holds no values), nor with l1Ttl or refresh-ahead, whose L1 copies are
      // shaped from the writer's policy at fill time; those caches only evict.
      ...(config.observe || config.policy.l1TtlMs !== undefined || config.policy.refreshAhead !== undefined
        ? {}
        : { onCarriedValue: (key: string, entry: TierEntry) => local.fillCarried(key, entry) }),
      onGap: () => {
        if (invalidationChannel.hasSubscribers) invalidationChannel.publish({ cache: name, kind: 'gap', key: undefined } satisfies InvalidationEvent)
        local.clear()
      },
    })
    if (membership === undefined) return { membership, atomicRoute: undefined }
    const shared = config.shared
    if (shared?.deployment !== undefined && membership.deployment !== undefined && shared.deployment !== membership.deployment) {
      throw new InvalidOptionError(
        `the shared tier writes under prefix "${shared.deployment}" but the bus carries prefix "${membership.deployment}": ` +
          "instances would never hear each other's invalidations; give both the same prefix",
        { cache: name },
      )
    }
    // onBusDown { serveStale }: the user chose a wider bound for outages ('serve-stale-l1': none at all).
    local.trust = config.serveStaleMs === Number.POSITIVE_INFINITY ? ALWAYS_TRUSTED : membership.trust
    if (config.serveStaleMs !== undefined && config.serveStaleMs !== Number.POSITIVE_INFINITY) local.trust = lastProof(membership.trust)
    local.maxStalenessMs = Math.max(config.maxStalenessMs ?? membership.maxStalenessMs, config.serveStaleMs ?? 0)
    const route = membership.route
    const atomicRoute = route !== undefined && boundShared?.canPublishVia?.(route) === true ? route : undefined
    return { membership, atomicRoute }
  } catch (error) {
    local.close()
    membership?.leave()
    boundShared?.close().catch(() => {})
    throw error
  }
}

/**
 * `{ serveStale }`: L1 is read under the newest proof even while a gap is
 * open (the bus drops `verifiedAt` then), so the user's bound counts from
 * the last time delivery was proven, as its docs say.
 */
function lastProof(trust: BusTrust): BusTrust {
  return {
    get verifiedAt() {
      return Math.max(trust.verifiedAt, trust.lastProvenAt ?? Number.NEGATIVE_INFINITY)
    },
  }
}
