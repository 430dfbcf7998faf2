/**
 * Bounded waits for many concurrent calls that share one timeout, without a
 * timer per call. Calls are watched in the order they start, and since they
 * all wait the same time their deadlines are in that order too: one timer,
 * armed for the oldest unsettled call, serves them all.
 *
 * Why: `setTimeout` + `clearTimeout` + `Promise.race` on every Redis call was
 * the largest cost the adapter itself added to an L2 hit in a 64-caller
 * profile; here a call costs one small record and one array slot.
 */
interface Watch {
  readonly deadline: number
  settled: boolean
  readonly reject: (error: unknown) => void
  readonly operation: string
  readonly key: string | undefined
}

export class Deadlines {
  readonly #timeoutMs: number
  readonly #timeoutError: (operation: string, key: string | undefined) => Error
  readonly #failure: (operation: string, key: string | undefined, error: unknown) => Error
  #queue: Watch[] = []
  #head = 0
  #timer: NodeJS.Timeout | undefined

  constructor(
    timeoutMs: number,
    timeoutError: (operation: string, key: string | undefined) => Error,
    failure: (operation: string, key: string | undefined, error: unknown) => Error,
  ) {
    this.#timeoutMs = timeoutMs
    this.#timeoutError = timeoutError
    this.#failure = failure
  }

  /**
   * `pending`'s value; or, once the timeout passed first, a rejection with
   * `timeoutError(operation, key)`; or `pending`'s failure as
   * `failure(operation, key, error)`. Mapping the failure here rather than
   * in an async wrapper around this promise saves the lone L2 hit one async
   * frame and its await (issue 23).
   */
  watch<T>(pending: Promise<T>, operation: string, key: string | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const watch: Watch = { deadline: performance.now() + this.#timeoutMs, settled: false, reject, operation, key }
      this.#queue.push(watch)
      if (this.#timer === undefined) this.#arm(this.#timeoutMs)
      pending.then(
        (value) => {
          this.#settle(watch)
          resolve(value)
        },
        (error: unknown) => {
          // Already rejected by its timeout: this later failure has nobody waiting (handled here, so never unhandled).
          if (watch.settled) return
          this.#settle(watch)
          reject(this.#failure(operation, key, error))
        },
      )
    })
  }

  #settle(watch: Watch): void {
    watch.settled = true
    // Replies on one connection come in order, so the settled call is usually the oldest: drop it now.
    if (this.#queue[this.#head] === watch) this.#dropSettled()
  }

  /** Stops the timer once nothing is waiting (`close()`: no handle left open). Calls still waiting keep it. */
  stopWhenIdle(): void {
    this.#dropSettled()
    if (this.#head === this.#queue.length) this.#disarm()
  }

  #arm(delayMs: number): void {
    // Unref'd: a call in flight keeps the process alive through its socket, not through this timer.
    this.#timer = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(delayMs))).unref()
  }

  #disarm(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #expire(): void {
    this.#timer = undefined
    const now = performance.now()
    const queue = this.#queue
    while (this.#head < queue.length) {
      const watch = queue[this.#head]!
      if (!watch.settled) {
        if (watch.deadline > now) break
        watch.settled = true
        watch.reject(this.#timeoutError(watch.operation, watch.key))
      }
      this.#head++
    }
    this.#compact()
    if (this.#head < queue.length) this.#arm(queue[this.#head]!.deadline - now)
  }

  #dropSettled(): void {
    while (this.#head < this.#queue.length && this.#queue[this.#head]!.settled) this.#head++
    this.#compact()
  }

  /** Settled records at the front are dropped in bulk, so the array neither grows without bound nor shifts per call. */
  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0 // the same array: a lone caller empties it on every reply
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
  }
}
