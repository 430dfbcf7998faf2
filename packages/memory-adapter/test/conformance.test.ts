import { runBusConformance, runTierConformance } from '@tiercache/core/testing'
import { afterEach, describe, expect, it } from 'vitest'
import { memoryBus, memoryStore, memoryTier } from '../src/index.js'

runTierConformance({ name: 'memoryTier (L1)', kind: 'local', createTier: () => memoryTier({ maxEntries: 1_000 }) })
runTierConformance({ name: 'memoryStore (in-process L2)', kind: 'shared', createTier: () => memoryStore() })

// The same suite with the test framework passed in, as a project without
// vitest passes its own: vitest's functions must fit the harness type.
runTierConformance({ name: 'memoryStore, harness passed explicitly', kind: 'shared', createTier: () => memoryStore() }, { describe, it, expect, afterEach })

// One in-process bus serves every instance of the process: both handles are the same object.
runBusConformance({
  name: 'memoryBus (in-process)',
  open: async () => {
    const bus = memoryBus()
    return { buses: [bus, bus], close: () => bus.close() }
  },
})
