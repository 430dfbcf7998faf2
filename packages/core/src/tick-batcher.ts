/**
 * Collects items submitted during one tick and hands them to `flush` as one
 * batch on `process.nextTick` (the same boundary ioredis auto-pipelining
 * uses). Each submitter gets a promise settled with its own item's result.
 * Coalescing mechanism 5: a burst of writes becomes one message, not N.
 */
export class TickBatcher<Item, Result> {
  #pending: Array<{ item: Item; resolve: (result: Result) => void; reject: (error: unknown) => void }> = []
  #scheduled = false
  readonly #flush: (items: Item[]) => Promise<Result[]>
  readonly #maxBatch: number

  /** `flush` returns one result per item, in order; a rejection rejects every item of the batch. */
  constructor(flush: (items: Item[]) => Promise<Result[]>, maxBatch = 512) {
    this.#flush = flush
    this.#maxBatch = maxBatch
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
    // Bounded batches: one huge burst must not become one unbounded message.
    for (let start = 0; start < pending.length; start += this.#maxBatch) {
      const chunk = pending.slice(start, start + this.#maxBatch)
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
}
