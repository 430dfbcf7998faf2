/**
 * `@tiercache/core/testing`: the conformance suites for adapter authors.
 * They state the contracts in contracts.ts as tests; an adapter that passes
 * them can be dropped into `tiers` (or be the `bus`) without core knowing
 * anything about it.
 *
 *   import { runTierConformance, runBusConformance } from '@tiercache/core/testing'
 *   runTierConformance({ name: 'my tier', kind: 'shared', createTier: () => myTier() })
 *   runBusConformance({ name: 'my bus', open: async () => ({ buses: [a, b], close }) })
 *
 * Importing this module loads no test framework, so it works without
 * vitest installed. A suite finds one when it is called: the harness passed
 * to it (`{ describe, it, expect }`), else vitest/jest-style globals, else
 * vitest (an optional peer dependency of core); with none it throws
 * `ConformanceHarnessError` (code `ERR_INVALID_ARGUMENT`).
 */
export { runBusConformance } from './testing-bus.js'
export type { BusConformanceOptions, BusHarness } from './testing-bus.js'
export { ConformanceHarnessError } from './testing-harness.js'
export type { ConformanceAssertion, ConformanceHarness } from './testing-harness.js'
export { runTierConformance } from './testing-tier.js'
export type { TierConformanceOptions } from './testing-tier-support.js'
