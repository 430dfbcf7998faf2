/**
 * Write recovery (opt-in `writeRecovery`): invalidations whose shared-tier
 * write failed wait here, in order, and are replayed when the tier answers
 * again, before this instance trusts its L1 again.
 *
 * - A queued `set` replays as a delete: replaying the value could overwrite
 *   a newer one another instance wrote meanwhile; deleting it costs a miss.
 * - Until its replay, this instance leaves L2 alone for the key (a queued
 *   tag, namespace or clear invalidation: for every key), or it would read
 *   back the value from before its own write.
 * - It fails closed: a queue that overflows, or a replay that keeps
 *   failing, collapses into one `clear()` of the cache, replayed the same way.
 * - It lives in this process: if the process dies, the queue is lost (other
 *   instances then serve the previous value until its TTL ends).
 */
import type { BusTrust, Invalidation } from '../contracts.js'
import { errorMessageOf } from '../errors.js'
import type { WriteRecoveryOptions } from './config.js'
import type { Reporter } from './report.js'

export class WriteRecovery {
  readonly #cache: string
  readonly #options: WriteRecoveryOptions
  readonly #reporter: Reporter
  #replayOne: (invalidation: Invalidation) => Promise<void> = async () => {}
  #tierDown: () => boolean = () => false
  #queue: Invalidation[] = []
  /** Keys with a queued key invalidation, and how many. */
  readonly #keys = new Map<string, number>()
  /** Tag, namespace or clear invalidations queued: every key's L2 is off limits. */
  #wide = 0
  #attempts = 0
  #timer: NodeJS.Timeout | undefined
  #replaying = false
  #closed = false
  replayed = 0
  collapses = 0

  constructor(cache: string, options: WriteRecoveryOptions, reporter: Reporter) {
    this.#cache = cache
    this.#options = options
    this.#reporter = reporter
  }

  /** Wired by the writer: how one invalidation is written again, and whether the tier is known down. */
  connect(replayOne: (invalidation: Invalidation) => Promise<void>, tierDown: () => boolean): void {
    this.#replayOne = replayOne
    this.#tierDown = tierDown
  }

  /** Invalidations waiting for their replay. */
  get queued(): number {
    return this.#queue.length
  }

  /** Reads and fills of `key` must leave L2 alone until the queue has replayed what concerns it. */
  blocksL2(key: string): boolean {
    return this.#queue.length > 0 && (this.#wide > 0 || this.#keys.has(key))
  }

  /**
   * The trust L1 is read under: the bus's, except that nothing in L1 is
   * trusted while writes wait for their replay (rule 7 still lets this
   * instance reuse its own recent loads).
   */
  gate(trust: BusTrust): BusTrust {
    const queue = () => this.#queue.length
    return {
      get verifiedAt() {
        return queue() > 0 ? Number.NEGATIVE_INFINITY : trust.verifiedAt
      },
    }
  }

  enqueue(invalidation: Invalidation): void {
    if (this.#queue.length >= this.#options.maxQueued) {
      this.#collapse(`the queue is full (${this.#options.maxQueued} invalidations)`)
    } else {
      this.#push(invalidation)
    }
    this.#schedule()
  }

  close(): void {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }

  #push(invalidation: Invalidation): void {
    this.#queue.push(invalidation)
    if (invalidation.kind === 'key') this.#keys.set(invalidation.key, (this.#keys.get(invalidation.key) ?? 0) + 1)
    else this.#wide++
  }

  #shift(): void {
    const done = this.#queue.shift()
    if (done === undefined) return
    if (done.kind !== 'key') this.#wide--
    else {
      const left = (this.#keys.get(done.key) ?? 1) - 1
      if (left === 0) this.#keys.delete(done.key)
      else this.#keys.set(done.key, left)
    }
  }

  /** Fails closed: everything queued becomes one clear of the cache. */
  #collapse(why: string): void {
    this.collapses++
    this.#queue = []
    this.#keys.clear()
    this.#wide = 0
    this.#attempts = 0
    this.#push({ kind: 'clear', cache: this.#cache })
    this.#reporter.state(
      'error',
      { collapses: this.collapses },
      `write recovery: ${why}; the queued invalidations became one clear() of the cache, replayed when the shared tier is back`,
      'TIERCACHE_WRITE_QUEUE_COLLAPSED',
    )
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed || this.#queue.length === 0) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#replay()
    }, this.#options.retryMs)
    this.#timer.unref()
  }

  async #replay(): Promise<void> {
    if (this.#replaying || this.#closed) return
    this.#replaying = true
    try {
      while (this.#queue.length > 0 && !this.#closed && !this.#tierDown()) {
        const next = this.#queue[0]!
        try {
          await this.#replayOne(next)
        } catch (error) {
          this.#attempts++
          if (this.#attempts >= this.#options.maxAttempts && next.kind !== 'clear') {
            this.#collapse(`a replay failed ${this.#attempts} times (last: ${errorMessageOf(error)})`)
          }
          return
        }
        // The head may have changed while the replay was in flight (a collapse): drop it only if it is still the one replayed.
        if (this.#queue[0] === next) this.#shift()
        this.#attempts = 0
        this.replayed++
      }
      if (this.#queue.length === 0) {
        this.#reporter.state(
          'info',
          { replayed: this.replayed },
          'write recovery: every queued invalidation reached the shared tier; L1 is trusted again',
          'TIERCACHE_WRITE_QUEUE_EMPTY',
        )
      }
    } finally {
      this.#replaying = false
      this.#schedule()
    }
  }
}
