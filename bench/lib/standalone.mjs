// Lets one scenario run on its own during development:
//   node bench/scenarios/l1-hit.mjs [--smoke]
import { fileURLToPath } from 'node:url'
import { scenarioTables } from './report.mjs'
import { startRedis } from './redis.mjs'

export async function runStandalone({ title, run }) {
  const redis = await startRedis()
  try {
    const result = await run({ redisUrl: redis.url, smoke: process.argv.includes('--smoke') })
    console.log(`### ${title}\n\n${scenarioTables(result)}\n`)
    for (const note of result.notes ?? []) console.log(`- ${note}`)
  } finally {
    await redis.stop()
  }
}

/**
 * A scenario file's entry point. Run as `node <scenario>.mjs` it measures on
 * its own; forked with 'worker' and a JSON argument it is one of the
 * scenario's worker processes; imported (the orchestrator does) it does nothing.
 */
export async function asEntryPoint(moduleUrl, scenario, workerMain) {
  if (process.argv[1] !== fileURLToPath(moduleUrl)) return
  if (workerMain !== undefined && process.argv[2] === 'worker') await workerMain(JSON.parse(process.argv[3]))
  else await runStandalone(scenario)
}
