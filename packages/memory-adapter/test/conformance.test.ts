import { runTierConformance } from '@tiercache/core/testing'
import { memoryStore, memoryTier } from '../src/index.js'

runTierConformance({ name: 'memoryTier (L1)', kind: 'local', createTier: () => memoryTier({ maxEntries: 1_000 }) })
runTierConformance({ name: 'memoryStore (in-process L2)', kind: 'shared', createTier: () => memoryStore() })
