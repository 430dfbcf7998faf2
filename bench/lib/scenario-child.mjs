// Runs one scenario in a fresh process (no JIT state or heap left over from
// another scenario) and sends its result to the orchestrator.
//   node lib/scenario-child.mjs <id> <redis url> [--smoke]
const [, , id, redisUrl] = process.argv
const scenario = await import(`../scenarios/${id}.mjs`)
try {
  const result = await scenario.run({ redisUrl, smoke: process.argv.includes('--smoke') })
  process.send({ ok: true, id, title: scenario.title, ...result })
} catch (error) {
  process.send({ ok: false, id, title: scenario.title, error: String(error?.stack ?? error) })
}
process.disconnect()
