/**
 * Who waits on a load: the callers of a registered load (single-flight), or
 * none (a load whose callers are settled elsewhere). A load answers them once,
 * with its value, an earlier stale value (stale-while-revalidate, a soft
 * timeout), or its error.
 */
import type { Load } from './local-state.js'

/** The callers of one load: `answer` gives them a value once; `answered` says whether they have one. */
export interface LoadCallers<V> {
  answer(value: V, stale?: { until: number; t0: number }): boolean
  readonly answered: boolean
  /** The load as registered for single-flight (absent for a load no one can join). */
  readonly load?: Load<V>
}

/** For a load whose callers are settled elsewhere (a batch's single-key fallback). */
export const NO_CALLERS: LoadCallers<never> = { answer: () => false, answered: false }

/** The callers of a registered load: answered once, with its value, an earlier stale one, or its error. */
export class RegisteredCallers<V> implements LoadCallers<V> {
  answered = false
  readonly load: Load<V>
  readonly #resolve: (value: V) => void
  readonly #reject: (error: unknown) => void

  constructor(load: Load<V>, resolve: (value: V) => void, reject: (error: unknown) => void) {
    this.load = load
    this.#resolve = resolve
    this.#reject = reject
  }

  /** True if this call was the answer. A stale answer limits who may still join, and until when. */
  answer(value: V, staleAnswer?: { until: number; t0: number }): boolean {
    if (this.answered) return false
    this.answered = true
    if (staleAnswer !== undefined) {
      this.load.staleUntil = staleAnswer.until
      this.load.t0 = staleAnswer.t0
    }
    this.#resolve(value)
    return true
  }

  /** True if the callers get this error (false: they already had an answer). */
  fail(error: unknown): boolean {
    if (this.answered) return false
    this.answered = true
    this.#reject(error)
    return true
  }
}
