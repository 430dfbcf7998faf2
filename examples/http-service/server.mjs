// One instance of the example service: Express in front of a tiercache cache
// (an in-process L1, Redis as L2, and a Redis bus that tells every instance
// to drop its L1 copy when another one writes). Run two of them on one Redis
// (see README.md).
//
// Environment:
//   REDIS_URL  the Redis both instances share (default redis://127.0.0.1:6390)
//   PORT       the HTTP port (default 3001; 0 picks a free one, printed at start)
//   HOST       the address to listen on (default 127.0.0.1)
//   INSTANCE   this instance's name in the log and the x-instance header (default A)
//   DB_DIR     the directory of the example's database, shared by the instances
//              (default tiercache-example-db in the system's temporary directory)
import { subscribe } from 'node:diagnostics_channel'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CHANNELS, createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { createApp } from './app.mjs'
import { openDatabase } from './db.mjs'

const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6390'
const port = Number(process.env.PORT ?? 3001)
const host = process.env.HOST || '127.0.0.1'
const instance = process.env.INSTANCE || 'A'
const dbDir = process.env.DB_DIR || join(tmpdir(), 'tiercache-example-db')
/** Keeps the example's keys and channel apart from anything else on that Redis. */
const prefix = 'tiercache-example'
/** How long a shutdown waits for requests in flight before it drops their connections. */
const SHUTDOWN_GRACE_MS = 5_000

const log = (line) => console.log(`[${instance}] ${line}`)

// One bus per process: it serves every cache of the process.
const bus = redisBus({ redis: redisUrl, prefix })
const cache = createCache({
  name: 'products',
  tiers: [memoryTier({ maxEntries: 10_000 }), redisTier({ redis: redisUrl, prefix })],
  bus,
  ttl: '10m',
  invalidation: {
    on: ['PUT /products/:id'],
    tags: ['product:<id>', 'category:<name>'],
    notes: 'a PUT writes the database, then invalidates the product and its categories by tag on every instance',
  },
})

// What another instance's write does here, from core's diagnostics channel
// (the writer's own invalidations are not reported: they are not received).
// A 'gap' is the bus (re)subscribing, at startup too: messages sent while it
// was not subscribed may be lost, so L1 is emptied.
subscribe(CHANNELS.invalidation, (event) => {
  if (event.cache !== cache.name) return
  if (event.kind === 'gap') log('bus subscribed: L1 emptied, since it may have missed invalidations until now')
  else log(`invalidation received from another instance: ${event.kind}${event.key === undefined ? '' : ` ${event.key}`}`)
})

// A cache works before it connects (reads go to the database), so a wrong
// URL would go unnoticed: fail at startup instead, with what to do.
try {
  await cache.ready({ timeout: '5s' })
} catch (error) {
  console.error(`[${instance}] Redis is not reachable at ${redisUrl}: ${error.message}`)
  console.error(`[${instance}] Start one with:  redis-server --port 6390 --save '' --appendonly no`)
  console.error(`[${instance}] or set REDIS_URL to yours (e.g. REDIS_URL=redis://127.0.0.1:6379).`)
  await cache.close()
  await bus.close()
  process.exit(1)
}

const db = await openDatabase({ dir: dbDir, onQuery: (what) => log(`database: ${what}`) })
const app = createApp({ cache, db, instance, log })
const server = app.listen(port, host)
await new Promise((resolve, reject) => {
  server.once('listening', resolve)
  server.once('error', reject)
})
log(`listening on http://${host}:${server.address().port} (Redis ${redisUrl}, database ${dbDir})`)

// Graceful shutdown: stop accepting, let requests in flight finish, then
// close the cache and the bus. Nothing is left open, so the process ends on
// its own with exit code 0; a second signal while closing is ignored.
let closing = false
async function shutdown(signal) {
  if (closing) return
  closing = true
  log(`${signal}: closing`)
  const stragglers = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS)
  stragglers.unref()
  await new Promise((resolve) => {
    server.close(resolve)
    server.closeIdleConnections() // keep-alive connections with no request in flight
  })
  clearTimeout(stragglers)
  await cache.close()
  await bus.close()
  log('closed')
}
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    shutdown(signal).catch((error) => {
      console.error(`[${instance}] shutdown failed: ${error.stack ?? error}`)
      process.exitCode = 1
    })
  })
}
