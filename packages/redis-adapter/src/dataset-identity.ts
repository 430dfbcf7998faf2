/**
 * Dataset identity (trackExternalWrites): Redis tracking reports writes to
 * keys and flushes, but not SWAPDB or a dataset replaced any other way. The
 * bus keeps a random token in the database and reads it with every liveness
 * probe; a changed or missing token is a gap (see redis-bus.ts #probe).
 */
import { randomUUID } from 'node:crypto'
import { errorMessageOf } from '@tiercache/core/adapter'
import type { Redis } from 'ioredis'

/**
 * The key naming this database's dataset (trackExternalWrites). Under the
 * prefix, so a least-privilege ACL (`~<prefix>:*`) covers it; `#` right after
 * the prefix cannot be a cache's key (cache names are not empty and contain
 * no '#'), and keyOfLayout ignores it, so its tracking messages evict nothing.
 */
export function datasetIdentityKey(prefix: string): string {
  return `${prefix}:#dataset-identity`
}

/**
 * trackExternalWrites: the random token at `key` that names the dataset of
 * the bus's database, so a probe can tell when the dataset was swapped or
 * replaced without a tracking message. No TTL: volatile-* eviction never
 * picks it; allkeys-* eviction may (read every probe, it is the last an LRU
 * or LFU policy would choose), and that is a false alarm that fails closed.
 */
export class DatasetIdentity {
  /** The token this bus checks against; undefined before the first read and after a missing token. */
  expected: string | undefined
  /** Reads in flight. */
  pending = 0
  /** Why the last read failed (an ACL denying the key, OOM under noeviction); undefined once one succeeds. */
  error: string | undefined
  readonly key: string
  #client: Redis

  constructor(client: Redis, key: string) {
    this.#client = client
    this.key = key
  }

  /**
   * The token the database holds now, created first if absent. Creation is
   * SET NX followed by a read back on the same connection, so instances
   * racing to re-create it after a loss all end up with the one that landed
   * first. Resolves null if there is none: the SET was refused (OOM under
   * noeviction, an ACL; recorded in `error`), or the token vanished again in
   * between. Rejects only if the connection failed.
   */
  async read(): Promise<string | null> {
    this.pending++
    try {
      const client = this.#client
      let token = await client.get(this.key)
      if (token === null) {
        // Both sent before either reply, so nothing of ours runs between them.
        // A probe's read alone never writes: under noeviction a full Redis
        // refuses writes, and reads keep working there.
        const created = client.set(this.key, randomUUID(), 'NX').then(
          () => undefined,
          (error: unknown) => error,
        )
        const current = client.get(this.key)
        const [refused, now] = await Promise.all([created, current])
        if (now === null && refused !== undefined) this.error = errorMessageOf(refused)
        token = now
      }
      if (token !== null) this.error = undefined
      return token
    } catch (error) {
      this.error = errorMessageOf(error)
      throw error
    } finally {
      this.pending--
    }
  }
}
