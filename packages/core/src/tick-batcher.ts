/** The bounds of one {@link TickBatcher} batch. */
export interface TickBatcherOptions<Item> {
  /**
   * Most items in one batch; a tick with more is flushed as several.
   * Prevents one command (one Lua script, one MGET) so large it holds the
   * server, and every other client, for its whole run.
   *
   * @defaultValue 512
   */
  maxItems?: number
  /**
   * Most total weight (by `weigh`) in one batch; an item heavier than this
   * goes alone. Prevents a batch of large values exceeding what one command
   * should carry (the Redis tier bounds a write batch's payload with it).
   *
   * @defaultValue unbounded
   */
  maxWeight?: number
  /** An item's weight, for `maxWeight`. @defaultValue none: items weigh 0, and only `maxItems` bounds a batch */
  weigh?: (item: Item) => number
}

/**
 * Collects items submitted during one tick and hands them to `flush` as
 * batches, in submission order, on `process.nextTick` (the boundary ioredis
 * auto-pipelining uses). Each submitter gets a promise settled with its own
 * item's result. Coalescing, mechanism 5: a burst of writes becomes one
 * message, not N.
 */
export class TickBatcher<Item, Result> {
  #pending: Array<{ item: Item; resolve: (result: Result) => void; reject: (error: unknown) => void }> = []
  #scheduled = false
  readonly #flush: (items: Item[]) => Promise<Result[]>
  readonly #maxItems: number
  readonly #maxWeight: number
  readonly #weigh: ((item: Item) => number) | undefined

  /** `flush` returns one result per item, in order; a rejection rejects every item of that batch. */
  constructor(flush: (items: Item[]) => Promise<Result[]>, options: TickBatcherOptions<Item> = {}) {
    this.#flush = flush
    this.#maxItems = options.maxItems ?? 512
    this.#maxWeight = options.maxWeight ?? Number.POSITIVE_INFINITY
    this.#weigh = options.weigh
  }

  submit(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject })
      if (!this.#scheduled) {
        this.#scheduled = true
        process.nextTick(() => this.#run())
      }
    })
  }

  #run(): void {
    this.#scheduled = false
    const pending = this.#pending
    this.#pending = []
    let chunk: typeof pending = []
    let weight = 0
    for (const entry of pending) {
      const itemWeight = this.#weigh?.(entry.item) ?? 0
      if (chunk.length > 0 && (chunk.length >= this.#maxItems || weight + itemWeight > this.#maxWeight)) {
        this.#send(chunk)
        chunk = []
        weight = 0
      }
      chunk.push(entry)
      weight += itemWeight
    }
    if (chunk.length > 0) this.#send(chunk)
  }

  #send(chunk: Array<{ item: Item; resolve: (result: Result) => void; reject: (error: unknown) => void }>): void {
    let flushed: Promise<Result[]>
    try {
      flushed = this.#flush(chunk.map((p) => p.item))
    } catch (error) {
      flushed = Promise.reject(error)
    }
    flushed.then(
      (results) => chunk.forEach((p, i) => p.resolve(results[i] as Result)),
      (error: unknown) => chunk.forEach((p) => p.reject(error)),
    )
  }
}
