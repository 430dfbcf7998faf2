// Lets one scenario run on its own during development:
//   node bench/scenarios/l1-hit.mjs [--smoke]
import { markdownTable } from './report.mjs'
import { startRedis } from './redis.mjs'

export async function runStandalone({ title, run }) {
  const redis = await startRedis()
  try {
    const result = await run({ redisUrl: redis.url, smoke: process.argv.includes('--smoke') })
    console.log(`### ${title}\n\n${markdownTable(result.columns, result.rows)}\n`)
    for (const note of result.notes ?? []) console.log(`- ${note}`)
  } finally {
    await redis.stop()
  }
}
