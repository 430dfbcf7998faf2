// The bus on Redis Cluster: what sharded pub/sub costs as instances are added.
// One writer cache, N subscriber buses (each with its own ioredis Cluster
// client, so its own connections, as N instances would have), a fixed write
// rate with a new key per write (so writes spread over all 64 key groups and
// so over every shard), for N = 1, 10, 50: messages delivered, Redis CPU per
// node, Redis CPU per delivered message, and what one clear() and one
// invalidateTags() cost. Then, for comparison, raw ioredis classic pub/sub
// (PUBLISH is broadcast to every node over the cluster bus) and raw sharded
// pub/sub on one shard channel. The figures back docs/scaling.md.
//
//   node bench/cluster-fanout.mjs        (starts its own 3-primary cluster)
//
// All subscribers live in this one process, as in bus-fanout.mjs (the machine
// has 2 cores; 50 processes would measure the scheduler).
import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { Cluster, Redis } from 'ioredis'
import { startCluster } from './lib/cluster.mjs'
import { median } from './lib/stats.mjs'

const WRITES_PER_SECOND = 500
const SECONDS = 4
const SUBSCRIBERS = [1, 10, 50]
const CALLS = 20 // clear() and invalidateTags() calls timed per row
const PREFIX = 'cfan' // one prefix for every row, so every row has the same groups on the same nodes
// A key invalidation as the bus encodes it (~50 bytes): the payload of the raw rows.
const MESSAGE = JSON.stringify({ v: 1, i: [['aZ3kQ9xY', 'k', 'items', 'd12345']] })
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const cluster = await startCluster({ primaries: 3 })
const ports = cluster.nodes.map((node) => node.port)
const admins = cluster.nodes.map((node) => new Redis(node).on('error', () => {}))
const clusterClient = () => new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } }).on('error', () => {})

/** INFO cpu of every node, in seconds (sys + user; includes Redis's background threads). */
const cpuPerNode = () =>
  Promise.all(
    admins.map(async (admin) => {
      const info = await admin.info('cpu')
      const pick = (name) => Number(info.match(new RegExp(`${name}:([\\d.]+)`))[1])
      return pick('used_cpu_sys') + pick('used_cpu_user')
    }),
  )

/** Calls send(i) WRITES_PER_SECOND times a second for SECONDS (or just waits, without send); returns the count sent and each node's Redis CPU for the window. */
async function paced(send) {
  const cpuBefore = await cpuPerNode()
  if (send === undefined) await sleep(SECONDS * 1000)
  const gap = 1000 / WRITES_PER_SECOND
  const started = performance.now()
  let sent = 0
  while (send !== undefined && performance.now() - started < SECONDS * 1000) {
    await send(sent)
    sent++
    const wait = started + sent * gap - performance.now()
    if (wait > 0) await sleep(wait)
  }
  await sleep(200) // let the last deliveries land
  const cpuAfter = await cpuPerNode()
  return { sent, cpu: cpuAfter.map((after, i) => after - cpuBefore[i]) }
}

const busRows = []
const rawRows = []
const groupsPerNode = new Map(ports.map((port) => [port, 0]))
try {
  /** The node (port) that owns a key's or shard channel's slot. */
  const slots = await admins[0].cluster('SLOTS')
  const ownerOf = async (name) => {
    const slot = await admins[0].cluster('KEYSLOT', name)
    return slots.find(([start, end]) => slot >= start && slot <= end)[2][1]
  }
  // How the bus's 64 group channels fall on the nodes: the per-node CPU below follows it.
  for (let n = 0; n < 64; n++) {
    const port = await ownerOf(`${PREFIX}:invalidations{${PREFIX}/${n}}`)
    groupsPerNode.set(port, groupsPerNode.get(port) + 1)
  }

  rawRows.push({ mode: 'idle (no clients)', subscribers: 0, delivered: 0, ...(await paced()) })

  for (const n of SUBSCRIBERS) {
    const writerClient = clusterClient()
    // The tier and the bus share the writer's client: that is what lets a write publish inside its own script.
    const writerBus = redisBus({ redis: writerClient, prefix: PREFIX })
    const writer = createCache({
      name: 'items',
      tiers: [memoryTier(), redisTier({ redis: writerClient, prefix: PREFIX })],
      bus: writerBus,
      ttl: '1h',
      invalidation: { notes: 'bench' },
    })
    const readers = []
    for (let i = 0; i < n; i++) {
      const client = clusterClient()
      const bus = redisBus({ redis: client, prefix: PREFIX })
      const cache = createCache({ name: 'items', tiers: [memoryTier()], bus, ttl: '1h', invalidation: { notes: 'bench' } })
      readers.push({ client, bus, cache })
    }
    await Promise.all([writerBus, ...readers.map((r) => r.bus)].map((bus) => bus.ready()))
    // What N buses cost Redis with nothing written: each probes each of its 3 subscriber links 4 times a second.
    const { cpu: idleCpu } = await paced()
    const received = () => readers.reduce((sum, r) => sum + r.bus.status().messagesReceived, 0)
    const published = () => writerBus.status().messagesPublishedAtomically + writerBus.status().messagesPublished

    const receivedBefore = received()
    const publishedBefore = published()
    const { sent: writes, cpu } = await paced((i) => writer.set(`n${n}-k${i}`, i))
    const row = { subscribers: n, writes, published: published() - publishedBefore, delivered: received() - receivedBefore, cpu, idleCpu }

    // One clear() / invalidateTags() at a time, each given time to be delivered before the next.
    for (const [name, call] of [
      ['clear', () => writer.clear()],
      ['tags', () => writer.invalidateTags(['t'])],
    ]) {
      const before = received()
      const times = []
      for (let i = 0; i < CALLS; i++) {
        const started = performance.now()
        await call()
        times.push(performance.now() - started)
        await sleep(50)
      }
      row[name] = { perInstance: (received() - before) / (n * CALLS), p50: median(times) }
    }
    busRows.push(row)
    for (const r of readers) {
      await r.cache.close()
      await r.bus.close()
      await r.client.quit() // the caller's client: the bus does not close it
    }
    await writer.close()
    await writerBus.close()
    await writerClient.quit()
  }

  // Raw ioredis, no tiercache: N plain subscriber connections and one publisher.
  const shardChannel = 'raw:shard{0}'
  const shardOwner = await ownerOf(shardChannel)
  const modes = [
    // Classic: subscribers spread round-robin over the nodes; a PUBLISH on any node reaches every node over the cluster bus.
    {
      mode: 'PUBLISH / SUBSCRIBE',
      channel: 'raw:classic',
      subscribe: 'subscribe',
      event: 'message',
      publish: 'publish',
      nodeOf: (i) => ports[i % ports.length],
      publisherNode: ports[0],
    },
    // Sharded: the channel lives on its slot's node; subscribers and publisher talk to that node only.
    {
      mode: 'SPUBLISH / SSUBSCRIBE (one shard channel)',
      channel: shardChannel,
      subscribe: 'ssubscribe',
      event: 'smessage',
      publish: 'spublish',
      nodeOf: () => shardOwner,
      publisherNode: shardOwner,
    },
  ]
  for (const { mode, channel, subscribe, event, publish, nodeOf, publisherNode } of modes) {
    // 0 subscribers: what publishing alone costs each node (for PUBLISH, the forwarding to every node).
    for (const n of [0, ...SUBSCRIBERS]) {
      let delivered = 0
      const subscribers = Array.from({ length: n }, (_, i) => new Redis({ host: '127.0.0.1', port: nodeOf(i) }).on('error', () => {}))
      await Promise.all(subscribers.map((s) => s[subscribe](channel)))
      for (const s of subscribers) s.on(event, () => delivered++)
      const publisher = new Redis({ host: '127.0.0.1', port: publisherNode }).on('error', () => {})
      const { sent, cpu } = await paced(() => publisher[publish](channel, MESSAGE))
      rawRows.push({ mode, subscribers: n, sent, delivered, cpu })
      await Promise.all([publisher, ...subscribers].map((c) => c.quit()))
    }
  }
} finally {
  for (const admin of admins) admin.disconnect()
  await cluster.stop()
}

const ms = (seconds) => (seconds * 1000).toFixed(0)
const total = (cpu) => cpu.reduce((a, b) => a + b, 0)
const nodeCells = (cpu) => `${cpu.map(ms).join(' | ')} | ${ms(total(cpu))} | ${((Math.max(...cpu) / total(cpu)) * 100).toFixed(0)} %`
const nodeHeads = ports.map((port) => `Redis CPU :${port} (ms)`).join(' | ')
const dashes = (count) => Array(count).fill('---').join(' | ')
/** Redis CPU per extra delivered message: the slope between the first and the last row of a kind (`base` subtracted from each row first). */
const slopeUs = (rows, base = () => 0) =>
  ((total(rows.at(-1).cpu) - base(rows.at(-1)) - total(rows[0].cpu) + base(rows[0])) * 1e6) / (rows.at(-1).delivered - rows[0].delivered)

console.log(
  `Node ${process.version}, redis-server ${cluster.version}; Redis Cluster of 3 primaries, no replicas, on this machine; ${WRITES_PER_SECOND} writes/s for ${SECONDS} s, a new key each; the bus's 64 group channels per node: ${ports.map((p) => `:${p} ${groupsPerNode.get(p)}`).join(', ')}. Redis CPU is sys + user over each ${SECONDS} s window.\n`,
)
console.log('**tiercache bus (sharded pub/sub)**\n')
console.log(
  `| subscribers | Redis CPU, no writes (ms) | writes | published in the write's script | messages delivered | per write | ${nodeHeads} | total (ms) | busiest node's share | Redis CPU per write |`,
)
console.log(`| ${dashes(ports.length + 9)} |`)
for (const r of busRows) {
  console.log(
    `| ${r.subscribers} | ${ms(total(r.idleCpu))} | ${r.writes} | ${r.published} | ${r.delivered} | ${(r.delivered / r.writes).toFixed(2)} | ${nodeCells(r.cpu)} | ${((total(r.cpu) * 1e6) / r.writes).toFixed(1)} µs |`,
  )
}
console.log(`\n**One clear() and one invalidateTags(['t']) (${CALLS} calls each, one at a time)**\n`)
console.log('| subscribers | messages per instance, one clear() | clear() p50 (ms) | messages per instance, one invalidateTags | invalidateTags p50 (ms) |')
console.log(`| ${dashes(5)} |`)
for (const r of busRows) {
  console.log(
    `| ${r.subscribers} | ${r.clear.perInstance.toFixed(1)} | ${r.clear.p50.toFixed(2)} | ${r.tags.perInstance.toFixed(1)} | ${r.tags.p50.toFixed(2)} |`,
  )
}
console.log(`\n**Raw ioredis on the same cluster, a ${Buffer.byteLength(MESSAGE)}-byte message ${WRITES_PER_SECOND}/s for ${SECONDS} s**\n`)
console.log(`| pub/sub | subscribers | publishes | messages delivered | per publish | ${nodeHeads} | total (ms) | busiest node's share |`)
console.log(`| ${dashes(ports.length + 7)} |`)
for (const r of rawRows) {
  const idle = r.sent === 0
  console.log(
    `| ${r.mode} | ${r.subscribers} | ${idle ? '–' : r.sent} | ${r.delivered} | ${idle ? '–' : (r.delivered / r.sent).toFixed(2)} | ${nodeCells(r.cpu)} |`,
  )
}
const classic = rawRows.filter((r) => r.mode.startsWith('PUBLISH') && r.subscribers > 0)
const sharded = rawRows.filter((r) => r.mode.startsWith('SPUBLISH') && r.subscribers > 0)
const at = (rows) => ms(total(rows.at(-1).cpu))
console.log(
  `\nMarginal Redis CPU per delivered message (${SUBSCRIBERS[0]} → ${SUBSCRIBERS.at(-1)} subscribers): tiercache bus ${slopeUs(busRows).toFixed(1)} µs ` +
    `(${slopeUs(busRows, (r) => total(r.idleCpu)).toFixed(1)} µs without the probes' share), raw PUBLISH ${slopeUs(classic).toFixed(1)} µs, raw SPUBLISH ${slopeUs(sharded).toFixed(1)} µs; ` +
    `total Redis CPU at ${SUBSCRIBERS.at(-1)} subscribers over ${SECONDS} s: bus ${at(busRows)} ms, raw PUBLISH ${at(classic)} ms, raw SPUBLISH ${at(sharded)} ms.`,
)
