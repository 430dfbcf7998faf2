/**
 * What a user gets from npm. Every published package is packed the way it is
 * published (`pnpm pack`, which turns `workspace:` ranges into versions), and
 * the tarballs are installed with npm into two empty apps, one with ioredis 5
 * and one with ioredis 6 (installed side by side). In each app:
 *   - an ESM program (app.mjs) and a CommonJS one (app.cjs) run two instances
 *     of a cache on a real Redis, one through the app's own ioredis client and
 *     one through a URL, and must exit on their own;
 *   - a strict program (types.mts) compiles with `tsc --strict --noEmit`
 *     under node16 (as .mts and .cts: the import and the require
 *     declarations), bundler and node10 resolution.
 * And each tarball holds only what a user needs. Needs `pnpm build` first (as
 * the rest of the suite) and the npm registry (or npm's cache) for ioredis,
 * @types/node and the packages' own dependencies.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisServer } from './support/redis-server.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixtures = fileURLToPath(new URL('./fixtures/pack-install/', import.meta.url))
const IOREDIS_MAJORS = [5, 6] as const
/** Per test: it may first wait for its app's npm install, which runs while earlier tests do. */
const TEST_TIMEOUT = 300_000

interface Published {
  name: string
  dir: string
}

/** Every package under packages/ that is not private: what `pnpm -r publish` would publish. */
function publishedPackages(): Published[] {
  const found: Published[] = []
  for (const entry of readdirSync(join(root, 'packages'), { withFileTypes: true })) {
    const manifestPath = join(root, 'packages', entry.name, 'package.json')
    if (!entry.isDirectory() || !existsSync(manifestPath)) continue
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { name: string; private?: boolean }
    if (manifest.private !== true) found.push({ name: manifest.name, dir: join(root, 'packages', entry.name) })
  }
  return found
}

/** The environment for npm, pnpm and the programs: without what pnpm set for this run, or anything pointing Node at this repo. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^pnpm_/i.test(key) || /^npm_(command|execpath|node_execpath|lifecycle_|package_|config_user_agent$|config_verify_deps_before_run$)/i.test(key))
      continue
    if (key === 'NODE_OPTIONS' || key === 'NODE_PATH') continue
    env[key] = value
  }
  return { ...env, ...extra }
}

interface Output {
  stdout: string
  stderr: string
}

const tail = (text: string, lines = 40): string => text.trimEnd().split('\n').slice(-lines).join('\n')

/**
 * Runs a command to completion. A failure, a non-zero exit or a process that
 * had to be killed at `timeoutMs` (it did not exit on its own) rejects with
 * the command, where it ran, why, and the tail of its output.
 */
function run(command: string, args: readonly string[], options: { cwd: string; timeoutMs: number; env?: Record<string, string> }): Promise<Output> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: childEnv(options.env), timeout: options.timeoutMs, maxBuffer: 32 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error === null) return resolve({ stdout, stderr })
        const failure = error as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: number | string | null }
        const why =
          failure.code === 'ENOENT'
            ? `${command} was not found on PATH`
            : failure.killed === true
              ? `it was killed (${failure.signal ?? 'SIGTERM'}) after ${options.timeoutMs / 1000} s: it did not finish or exit on its own (an open handle?)`
              : `it exited with ${failure.signal ? `signal ${failure.signal}` : `code ${String(failure.code)}`}`
        reject(new Error(`\`${command} ${args.join(' ')}\` in ${options.cwd} failed: ${why}\n--- stdout ---\n${tail(stdout)}\n--- stderr ---\n${tail(stderr)}`))
      },
    )
  })
}

/** pnpm 10 from PATH, else the version the repo pins through npx (as scripts/lib.sh does). */
async function pnpmCommand(): Promise<[string, string[]]> {
  try {
    const { stdout } = await run('pnpm', ['--version'], { cwd: root, timeoutMs: 30_000 })
    if (stdout.startsWith('10.')) return ['pnpm', []]
  } catch {
    // not on PATH: fall through to npx
  }
  const { packageManager } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { packageManager: string }
  return ['npx', ['--yes', packageManager]]
}

/** Packs each package into `destination` and answers the tarballs' paths (one per package). */
async function packAll(packages: readonly Published[], destination: string): Promise<string[]> {
  const [pnpm, prefix] = await pnpmCommand()
  const tarballs: string[] = []
  for (const { name, dir } of packages) {
    if (!existsSync(join(dir, 'dist'))) throw new Error(`${name} has no dist/ at ${dir}: run \`pnpm build\` before this test`)
    const before = new Set(readdirSync(destination))
    await run(pnpm, [...prefix, 'pack', '--pack-destination', destination], { cwd: dir, timeoutMs: 120_000 })
    const made = readdirSync(destination).filter((file) => file.endsWith('.tgz') && !before.has(file))
    if (made.length !== 1) throw new Error(`pnpm pack in ${dir} made ${made.length} tarballs (${made.join(', ')}), expected 1`)
    tarballs.push(join(destination, made[0]!))
  }
  return tarballs
}

const typescriptDir = dirname(createRequire(join(root, 'package.json')).resolve('typescript/package.json'))
const tscBin = join(typescriptDir, 'bin', 'tsc')

describe('packed packages installed with npm into an empty app', () => {
  const packages = publishedPackages()
  let work: string
  let tarballs: string[] = []
  let redis: RedisServer | undefined
  const apps = new Map<number, Promise<string>>()

  /** An empty app with every tarball, ioredis `major` and @types/node installed by npm, and the fixtures copied in. */
  async function installApp(major: number): Promise<string> {
    const app = join(work, `app-ioredis${major}`)
    mkdirSync(app)
    writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: `pack-install-ioredis${major}`, version: '0.0.0', private: true }, null, 2)}\n`)
    copyFileSync(join(fixtures, 'app.mjs'), join(app, 'app.mjs'))
    copyFileSync(join(fixtures, 'app.cjs'), join(app, 'app.cjs'))
    for (const name of ['types.mts', 'types.cts', 'types.ts']) copyFileSync(join(fixtures, 'types.mts'), join(app, name))
    // ioredis 6.1.0's own .d.ts files import 'redis-errors', which ships no
    // types: under `tsc --strict` without skipLibCheck an app that imports
    // ioredis 6.1 fails to compile with or without tiercache (TS7016, checked
    // in an app holding ioredis alone). Its users add @types/redis-errors, as
    // tsc suggests; so does this app (docs: redis-adapter README, "TypeScript").
    const ioredisTypesFix = major === 6 ? ['@types/redis-errors@1'] : []
    await run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        ...tarballs,
        `ioredis@${major}`,
        ...ioredisTypesFix,
        'prom-client@15',
        '@opentelemetry/api@1',
        '@types/node@20',
      ],
      {
        cwd: app,
        timeoutMs: 240_000,
      },
    )
    const installed = (JSON.parse(readFileSync(join(app, 'node_modules', 'ioredis', 'package.json'), 'utf8')) as { version: string }).version
    if (!installed.startsWith(`${major}.`)) throw new Error(`the app for ioredis ${major} installed ioredis ${installed}`)
    return app
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tiercache-pack-install-'))
    const destination = join(work, 'tarballs')
    mkdirSync(destination)
    tarballs = await packAll(packages, destination)
    redis = await RedisServer.start()
    // Both apps install at once, while the first tests wait for theirs.
    for (const major of IOREDIS_MAJORS) {
      const app = installApp(major)
      app.catch(() => {}) // reported by the tests that await it
      apps.set(major, app)
    }
  }, 180_000)

  // Waits for installs still running (a test failed early) before removing their directories: up to npm's own timeout.
  afterAll(async () => {
    await Promise.allSettled(apps.values())
    await redis?.stop()
    if (work !== undefined) rmSync(work, { recursive: true, force: true })
  }, 300_000)

  it('packs every published package with only what users need: dist, README, LICENSE, CHANGELOG, a manifest without workspace: ranges', async () => {
    expect(packages.map((p) => p.name)).toEqual(expect.arrayContaining(['@tiercache/core', '@tiercache/memory-adapter', '@tiercache/redis-adapter']))
    // Every package's problems, listed together: one run shows them all.
    const problems: string[] = []
    for (const [index, tarball] of tarballs.entries()) {
      const { name } = packages[index]!
      const { stdout } = await run('tar', ['-tzf', tarball], { cwd: work, timeoutMs: 30_000 })
      const files = stdout.split('\n').filter((line) => line !== '' && !line.endsWith('/'))
      const unexpected = files.filter((file) => !/^package\/(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist\/[\w.-]+\.(js|cjs|d\.ts|d\.cts))$/.test(file))
      if (unexpected.length > 0) problems.push(`${name}: files users do not need: ${unexpected.join(', ')}`)
      for (const needed of ['README.md', 'LICENSE', 'CHANGELOG.md', 'dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts']) {
        if (!files.includes(`package/${needed}`)) problems.push(`${name}: ${needed} is missing`)
      }
      const { stdout: manifestText } = await run('tar', ['-xzOf', tarball, 'package/package.json'], { cwd: work, timeoutMs: 30_000 })
      const manifest = JSON.parse(manifestText) as {
        license?: string
        repository?: { url?: string }
        homepage?: string
        keywords?: string[]
        peerDependencies?: Record<string, string>
        dependencies?: Record<string, string>
      }
      if (manifestText.includes('workspace:')) problems.push(`${name}: a workspace: range is left in the packed package.json`)
      if (manifest.license !== 'MIT') problems.push(`${name}: license is ${manifest.license}, not MIT`)
      if (!manifest.repository?.url?.includes('github.com') || manifest.homepage === undefined) problems.push(`${name}: no repository url or homepage`)
      if ((manifest.keywords?.length ?? 0) === 0) problems.push(`${name}: no keywords`)
      if (name === '@tiercache/core') {
        if (Object.keys(manifest.dependencies ?? {}).length > 0) problems.push(`${name}: has runtime dependencies ${JSON.stringify(manifest.dependencies)}`)
      } else if (!/^\^\d/.test(manifest.peerDependencies?.['@tiercache/core'] ?? '')) {
        problems.push(`${name}: @tiercache/core is not a peer dependency with a ^ range (${JSON.stringify(manifest.peerDependencies)})`)
      }
    }
    expect(problems, `in the tarballs under ${join(work, 'tarballs')}`).toEqual([])
  })

  describe.each(IOREDIS_MAJORS)('with ioredis %i', (major) => {
    /** Runs one of the app's programs under Node against the suite's Redis, with its own key prefix. */
    async function runProgram(file: string): Promise<unknown> {
      const app = await apps.get(major)!
      const { stdout } = await run(process.execPath, [file], {
        cwd: app,
        timeoutMs: 60_000,
        env: { REDIS_URL: redis!.url, TIERCACHE_PREFIX: `pack-${file.replace('.', '-')}-${major}` },
      })
      return JSON.parse(stdout.trim().split('\n').at(-1) ?? '')
    }

    /** `tsc --strict --noEmit` in the app: its own node_modules, @types/node, the packages' declarations checked too (no skipLibCheck). */
    async function compile(args: readonly string[], files: readonly string[]): Promise<void> {
      const app = await apps.get(major)!
      await run(process.execPath, [tscBin, '--strict', '--noEmit', '--target', 'es2022', '--types', 'node', ...args, ...files], {
        cwd: app,
        timeoutMs: 180_000,
      })
    }

    it(
      "an ESM program (import) works on Redis through the app's client and a URL, checks error codes, and exits on its own",
      async () => {
        expect(await runProgram('app.mjs')).toEqual({ module: 'esm', ioredis: expect.stringMatching(new RegExp(`^${major}\\.`)) })
      },
      TEST_TIMEOUT,
    )

    it(
      'a CommonJS program (require) does the same',
      async () => {
        expect(await runProgram('app.cjs')).toEqual({ module: 'cjs', ioredis: expect.stringMatching(new RegExp(`^${major}\\.`)) })
      },
      TEST_TIMEOUT,
    )

    it(
      'compiles under tsc --strict with node16 resolution, as ESM (.mts) and as CommonJS (.cts)',
      async () => {
        await compile(['--module', 'node16', '--moduleResolution', 'node16'], ['types.mts', 'types.cts'])
      },
      TEST_TIMEOUT,
    )

    it(
      'compiles under tsc --strict with bundler resolution',
      async () => {
        await compile(['--module', 'esnext', '--moduleResolution', 'bundler'], ['types.ts'])
      },
      TEST_TIMEOUT,
    )

    it(
      'compiles under tsc --strict with node10 resolution (the /adapter and /testing subpaths through typesVersions)',
      async () => {
        await compile(['--module', 'commonjs', '--moduleResolution', 'node10'], ['types.ts'])
      },
      TEST_TIMEOUT,
    )
  })
})
