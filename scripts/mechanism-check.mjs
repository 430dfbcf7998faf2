#!/usr/bin/env node
// Proves, every time it runs, that each coherence mechanism has a test that
// notices its absence: in a temporary copy of the repository it switches one
// mechanism off with a small named patch, rebuilds, runs that mechanism's
// tests and expects them to FAIL; then restores it and goes on to the next.
// A check done once by hand cannot be re-checked; this one can.
//
//   node scripts/mechanism-check.mjs            # every mechanism
//   node scripts/mechanism-check.mjs liveness   # the ones whose name contains "liveness"
//
// Exit status 1 if any mechanism's tests still pass with it switched off (or
// a patch no longer applies: the code moved, update the patch).
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** name, the patch that switches it off (exact text, found once), and the tests that must then fail. */
export const MECHANISMS = [
  {
    name: '1 atomic write+publish',
    file: 'packages/core/src/cache/write.ts',
    from: 'const route = this.#p.atomicRoute\n',
    to: "const route: AtomicPublish['route'] | undefined = undefined\n",
    tests: ['tests/coherence.test.ts', '-t', 'mechanism 1'],
  },
  {
    name: '2 in-flight guard (single key)',
    file: 'packages/core/src/cache/local-state.ts',
    from: 'if (this.l1 !== undefined && !this.#closed && this.guard.mayFill(key, ticket)) {',
    to: 'if (this.l1 !== undefined && !this.#closed) {',
    tests: ['packages/core/test/cache.test.ts', '-t', 'in-flight guard: an invalidation during an L2 read'],
  },
  {
    name: '2 in-flight guard on the getMany fill path',
    file: 'packages/core/src/cache/batch.ts',
    from: 'if (!skips.skipL1) local.fill(key, candidate, ticket, readIssuedAt, shapeOf(this.#p.policy, this.#p.policy.ttlMs))',
    to: 'if (!skips.skipL1) local.l1?.set(key, candidate)',
    tests: ['packages/core/test/in-flight-guard.test.ts', '-t', 'getMany'],
  },
  {
    name: '2 in-flight guard during invalidateTags / invalidateNamespace',
    file: 'packages/core/src/cache/local-state.ts',
    from: '// Which reads in flight were tagged is unknown until they finish: none may fill, none may be joined.\n      this.guard.invalidateAll()',
    to: '// (switched off)',
    tests: ['packages/core/test/in-flight-guard.test.ts', '-t', 'invalidate'],
  },
  {
    name: '3 liveness (L1 trusted only while probes answer)',
    file: 'packages/core/src/cache/join-bus.ts',
    from: 'local.trust = config.serveStaleMs === Number.POSITIVE_INFINITY ? ALWAYS_TRUSTED : membership.trust',
    to: 'local.trust = ALWAYS_TRUSTED',
    tests: ['tests/coherence.test.ts', '-t', 'reads bypass L1 within maxStaleness'],
  },
  {
    name: '3 gap clears L1',
    file: 'packages/core/src/cache/join-bus.ts',
    from: 'InvalidationEvent)\n        local.clear()',
    to: 'InvalidationEvent)',
    tests: ['packages/core/test/cache.test.ts', '-t', 'a gap clears L1'],
  },
  {
    name: '4 leases against stale sets',
    file: 'packages/core/src/cache/load.ts',
    from: 'lease === undefined ? { ifAbsent: true } : { lease }',
    to: '{ ifAbsent: true }',
    tests: ['tests/stampede.test.ts', '-t', 'leases against stale sets'],
  },
  {
    name: '5 no self-echo',
    file: 'packages/core/src/bus-members.ts',
    from: 'if (member.instanceId === origin) continue',
    to: '',
    tests: ['packages/redis-adapter/test/redis.test.ts', '-t', 'no self-echo'],
  },
  {
    name: '6 bookkeeping loss fails closed (a lost tag epoch must not reopen a fill scope)',
    file: 'packages/redis-adapter/src/scripts.ts',
    from: `  if not epoch then
    epoch = fresh_value(time, nonce)
    if failed(redis.pcall('SET', epochKey, epoch)) then return nil end
  end
  return generation .. '/' .. epoch`,
    to: `  return generation .. '/' .. (epoch or '')`,
    also: {
      from: `  if not epoch then return nil end
  return generation .. '/' .. epoch`,
      to: `  return generation .. '/' .. (epoch or '')`,
    },
    tests: ['tests/bookkeeping.test.ts', '-t', 'standalone'],
  },
  {
    name: 'trackExternalWrites: a swapped dataset (SWAPDB) is a gap',
    file: 'packages/redis-adapter/src/redis-bus.ts',
    from: 'identity.read().then((token) => this.#datasetMatches(token, round))',
    to: 'identity.read().then(() => true)',
    tests: ['packages/redis-adapter/test/swapdb.test.ts'],
  },
  {
    name: '2 in-flight guard on the fail-safe backoff (an invalidation during a failing load)',
    file: 'packages/core/src/cache/load.ts',
    from: 'if (local.guard.mayFill(key, ticket)) local.rememberFailSafe(',
    to: 'local.rememberFailSafe(',
    tests: ['packages/core/test/serve-rule.test.ts', '-t', 'keeps the old value out of the backoff'],
  },
  {
    name: '7 serve rule: fail-safe values',
    file: 'packages/core/src/cache/local-state.ts',
    from: 'if (now < backoff.until && until > now && this.servable(backoff.t0, now)) return backoff.entry',
    to: 'if (now < backoff.until && until > now) return backoff.entry',
    tests: ['packages/core/test/serve-rule.test.ts', '-t', 'fail-safe'],
  },
  {
    name: '7 serve rule: joined loads',
    file: 'packages/core/src/cache/local-state.ts',
    from: 'return now < load.staleUntil && this.servable(load.t0, now) ? load.promise : undefined',
    to: 'return now < load.staleUntil ? load.promise : undefined',
    tests: ['packages/core/test/serve-rule.test.ts', '-t', 'joined load'],
  },
  {
    name: '7 serve rule: grace values from L1',
    file: 'packages/core/src/cache/local-state.ts',
    from: 'return entry.staleUntil > now && this.servable(UNKNOWN_T0, now) ? entry : undefined',
    to: 'return entry.staleUntil > now ? entry : undefined',
    tests: ['packages/core/test/serve-rule.test.ts', '-t', 'grace'],
  },
  {
    name: '7 serve rule: outage reuse ends at t0 + maxStaleness',
    file: 'packages/core/src/cache/local-state.ts',
    from: 'if (entry !== undefined && freshUntilOf(entry) > now && this.servable(t0, now)) return entry',
    to: 'if (entry !== undefined && freshUntilOf(entry) > now) return entry',
    tests: ['packages/core/test/outage.test.ts', '-t', 'reuse window ends'],
  },
  {
    name: '1 a set that skips L2 still deletes the L2 copy and publishes (tier flags)',
    file: 'packages/core/src/cache/write.ts',
    from: '      ? writeL2Of(invalidation)',
    to: '      ? async () => {}',
    tests: ['tests/tier-flags.test.ts', '-t', 'skipL2'],
  },
  {
    name: '7 serve rule during a silent partition (real Redis)',
    file: 'packages/core/src/serve-rule.ts',
    from: 'return now < Math.max(verifiedAt, t0) + maxStalenessMs',
    to: 'return true',
    tests: ['tests/grace-partition.test.ts'],
  },
]

const filter = process.argv[2]
const selected = MECHANISMS.filter((m) => filter === undefined || m.name.includes(filter))
if (selected.length === 0) {
  console.error(`no mechanism matches "${filter}"`)
  process.exit(2)
}

const run = (cmd, args, cwd, quiet = true) => spawnSync(cmd, args, { cwd, stdio: quiet ? 'pipe' : 'inherit', encoding: 'utf8' })

// A copy of the working tree (tracked and new files, nothing ignored), with its own install and build.
const copy = mkdtempSync(join(tmpdir(), 'mechanism-check-'))
const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
  .split('\0')
  .filter((f) => f !== '')
for (const file of files) {
  mkdirSync(dirname(join(copy, file)), { recursive: true })
  try {
    cpSync(join(root, file), join(copy, file))
  } catch {
    // a file deleted in the working tree but still tracked
  }
}
// pnpm 10 from PATH, or the version scripts/lib.sh pins, through npx (as scripts/test.sh does).
const pnpmOnPath = spawnSync('pnpm', ['--version'], { encoding: 'utf8' })
const pinned = /PNPM_VERSION=(\S+)/.exec(readFileSync(join(root, 'scripts/lib.sh'), 'utf8'))[1]
const [pnpmCmd, pnpmPrefix] = pnpmOnPath.status === 0 && pnpmOnPath.stdout.startsWith('10.') ? ['pnpm', []] : ['npx', ['--yes', `pnpm@${pinned}`]]
const pnpm = (args, quiet = true) => run(pnpmCmd, [...pnpmPrefix, ...args], copy, quiet)
console.log(`mechanism-check: copy in ${copy}; installing and building`)
for (const step of [
  ['install', '--frozen-lockfile', '--offline'],
  ['-r', '--filter', './packages/**', 'run', 'build'],
]) {
  const result = pnpm(step)
  if (result.status !== 0) {
    console.error(result.stdout, result.stderr)
    console.error(`mechanism-check: pnpm ${step.join(' ')} failed in the copy`)
    process.exit(2)
  }
}

const packageOf = (file) => `./${file.split('/').slice(0, 2).join('/')}`
const results = []
for (const mechanism of selected) {
  const path = join(copy, mechanism.file)
  const original = readFileSync(path, 'utf8')
  const count = original.split(mechanism.from).length - 1
  if (count !== 1) {
    results.push({ mechanism, outcome: `patch does not apply (found ${count} times in ${mechanism.file})`, ok: false })
    continue
  }
  let patched = original.replace(mechanism.from, mechanism.to)
  if (mechanism.also !== undefined) {
    if (patched.split(mechanism.also.from).length - 1 !== 1) {
      results.push({ mechanism, outcome: `second patch does not apply in ${mechanism.file}`, ok: false })
      continue
    }
    patched = patched.replace(mechanism.also.from, mechanism.also.to)
  }
  writeFileSync(path, patched)
  const built = pnpm(['--filter', packageOf(mechanism.file), 'run', 'build'])
  let outcome
  let ok
  if (built.status !== 0) {
    // The compiler's own words, so the patch can be fixed from the CI log alone.
    const errors = `${built.stdout}${built.stderr}`
      .split('\n')
      .filter((line) => /error/i.test(line))
      .slice(0, 5)
    outcome = `build failed with the patch (fix the patch)${errors.map((line) => `\n       ${line.trim()}`).join('')}`
    ok = false
  } else {
    const tested = pnpm(['exec', 'vitest', 'run', ...mechanism.tests])
    const failed = (tested.stdout.match(/(\d+) failed/) ?? [])[1]
    ok = tested.status !== 0 && failed !== undefined
    outcome = ok
      ? `tests failed as they must (${failed} failed)`
      : tested.status === 0
        ? 'TESTS STILL PASS with it switched off'
        : 'the test run broke without a failing test'
  }
  writeFileSync(path, original)
  const restored = pnpm(['--filter', packageOf(mechanism.file), 'run', 'build'])
  if (restored.status !== 0) {
    console.error('mechanism-check: rebuilding after restoring a patch failed')
    process.exit(2)
  }
  results.push({ mechanism, outcome, ok })
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${mechanism.name}: ${outcome}`)
}
rmSync(copy, { recursive: true, force: true })
const bad = results.filter((r) => !r.ok)
console.log(`mechanism-check: ${results.length - bad.length}/${results.length} mechanisms are guarded by a failing test when switched off`)
for (const r of bad) console.error(`  ${r.mechanism.name}: ${r.outcome}`)
process.exit(bad.length === 0 ? 0 : 1)
