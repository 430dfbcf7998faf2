// The lone L2 hit next to a bare GET + decode, with the machine's CPUs idle
// or kept busy (issue 23: why the one-caller ratio moved between 1.04x and
// 1.51x from run to run). Same measurement as scenario 2's one-caller
// column (bench/lib/interleave.mjs: turns of 32 awaited calls, p50 per
// segment), on its own redis-server; with --spin, one busy loop per CPU at
// nice 19 runs while it measures, so no CPU is idle when a reply arrives.
//
//   node bench/l2-lone.mjs            # as the machine is
//   node bench/l2-lone.mjs --spin     # every CPU kept busy by a niced spinner
import { spawn } from 'node:child_process'
import os from 'node:os'
import { Redis } from 'ioredis'
import { Packr } from 'msgpackr'
import { createCache } from '@tiercache/core'
import { redisTier } from '@tiercache/redis-adapter'
import { latencyInterleaved } from './lib/interleave.mjs'
import { startRedis } from './lib/redis.mjs'
import { median } from './lib/stats.mjs'
import { sampleValue } from './lib/value.mjs'

const KEYS = 1024
const spin = process.argv.includes('--spin')
const redis = await startRedis()
const spinners = []
try {
  const packr = new Packr({ moreTypes: true })
  const plain = new Redis(redis.url)
  for (let i = 0; i < KEYS; i++) await plain.set(`raw:${i}`, packr.pack(sampleValue(i)))
  const cache = createCache({ name: 'lone', tiers: [redisTier({ redis: redis.url, prefix: 'lone' })], ttl: '1h', invalidation: { notes: 'benchmark' } })
  for (let i = 0; i < KEYS; i++) await cache.set(String(i), sampleValue(i))
  const failIfCalled = async () => {
    throw new Error('factory called on an L2 hit')
  }
  if (spin) {
    for (let i = 0; i < os.cpus().length; i++) spinners.push(spawn('nice', ['-n', '19', process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' }))
  }
  const subjects = [
    { name: 'GET + decode', fn: async (i) => packr.unpack(await plain.getBuffer(`raw:${i}`)) },
    { name: 'tiercache', fn: (i) => cache.getOrSet(String(i), failIfCalled) },
  ]
  const m = await latencyInterleaved(subjects, { calls: 16_000, segments: 5, warmup: 2_000, keys: KEYS })
  const base = m.get('GET + decode')
  const ours = m.get('tiercache')
  const ratios = ours.segmentP50s.map((p, i) => p / base.segmentP50s[i])
  const us = (ns) => (ns / 1000).toFixed(1)
  console.log(
    JSON.stringify({
      cpus: spin ? 'kept busy' : 'as they are',
      loadAverage: os.loadavg()[0],
      getDecodeP50Us: +us(base.p50),
      tiercacheP50Us: +us(ours.p50),
      ratio: +median(ratios).toFixed(2),
      segmentRatios: ratios.map((r) => +r.toFixed(2)),
      addedUs: +us(ours.p50 - base.p50),
      clientCpuUsPerCall: { getDecode: +base.cpuUsPerCall.toFixed(1), tiercache: +ours.cpuUsPerCall.toFixed(1) },
    }),
  )
  await cache.close()
  plain.disconnect()
} finally {
  for (const s of spinners) s.kill('SIGKILL')
  await redis.stop()
}
