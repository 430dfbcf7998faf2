import { LatencyHistogram } from './histogram.js'
import { NAMESPACE_SEPARATOR } from './tags.js'

/** Groups profiled per cache; keys beyond them are profiled together as "(other)". */
const MAX_GROUPS = 64
const OTHER = '(other)'
/** Misses of a group before `policy: 'auto'` decides anything for it. */
export const MIN_GROUP_SAMPLE = 20
/** A group's decision is revisited after this many more misses. */
const REVISIT_EVERY = 50

export type GroupDecision = 'keep' | 'l1-only'

interface Profile {
  misses: number
  factory: LatencyHistogram
  decision: GroupDecision
  decidedAt: number
}

/**
 * Per-group factory profiles for the advisor and for `policy: 'auto'`. A
 * key's group is its namespace (a key template's scope), or "(no namespace)".
 * Only the miss path touches this: the L1 hit path stays as it is.
 */
export class GroupProfiles {
  #profiles = new Map<string, Profile>()

  static groupOf(key: string): string {
    const end = key.indexOf(NAMESPACE_SEPARATOR)
    return end < 0 ? '(no namespace)' : key.slice(0, end)
  }

  #profile(group: string): Profile {
    let profile = this.#profiles.get(group)
    if (profile === undefined) {
      // Past MAX_GROUPS every new group shares "(other)", which is always let in (one over the cap at most).
      if (this.#profiles.size >= MAX_GROUPS && group !== OTHER) return this.#profile(OTHER)
      profile = { misses: 0, factory: new LatencyHistogram(), decision: 'keep', decidedAt: 0 }
      this.#profiles.set(group, profile)
    }
    return profile
  }

  recordMiss(key: string, factoryMs: number): void {
    const profile = this.#profile(GroupProfiles.groupOf(key))
    profile.misses++
    profile.factory.record(factoryMs)
  }

  /**
   * The group's tier decision under `policy: 'auto'`, revisited as samples
   * come in. `onChange` hears each change (to log it). Without an L2 sample
   * there is nothing to compare with, and the decision stays 'keep'.
   */
  decide(key: string, l2P50Ms: number, l2Samples: number, onChange: (group: string, decision: GroupDecision, factoryP50Ms: number) => void): GroupDecision {
    const group = GroupProfiles.groupOf(key)
    const profile = this.#profiles.get(group) ?? this.#profiles.get(OTHER)
    if (profile === undefined || profile.misses < MIN_GROUP_SAMPLE || l2Samples < MIN_GROUP_SAMPLE) return 'keep'
    if (profile.decidedAt === 0 || profile.misses - profile.decidedAt >= REVISIT_EVERY) {
      const factoryP50Ms = profile.factory.quantile(0.5)
      // A margin against flapping: L1-only below 2 round trips, back to L2 above 3.
      const decision: GroupDecision =
        profile.decision === 'keep' ? (factoryP50Ms < 2 * l2P50Ms ? 'l1-only' : 'keep') : factoryP50Ms > 3 * l2P50Ms ? 'keep' : 'l1-only'
      profile.decidedAt = profile.misses
      // Each decision looks at the factory cost since the last one, so a change in it is seen.
      profile.factory = new LatencyHistogram()
      if (decision !== profile.decision) {
        profile.decision = decision
        onChange(group, decision, factoryP50Ms)
      }
    }
    return profile.decision
  }

  /** Per group: factory runs in all, and the factory's median since the group's last decision. */
  groups(): Array<{ group: string; misses: number; factoryP50Ms: number }> {
    return [...this.#profiles].map(([group, profile]) => ({ group, misses: profile.misses, factoryP50Ms: profile.factory.quantile(0.5) }))
  }
}
