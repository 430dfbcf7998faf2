import { clock } from './clock.js'

/**
 * Skips a failing shared tier for a cool-down instead of making every caller
 * wait out its timeout: closed (counting consecutive failures) → open (every
 * call skips the tier) → half-open (one call probes; success closes,
 * failure opens again).
 */
export class CircuitBreaker {
  readonly #threshold: number
  readonly #openForMs: number
  #failures = 0
  #openUntil = 0
  #probing = false
  #opened = 0

  constructor(threshold: number, openForMs: number) {
    this.#threshold = threshold
    this.#openForMs = openForMs
  }

  /** May a call go to the tier now? In half-open state, only the first caller (the probe) may. */
  allow(): boolean {
    if (this.#failures < this.#threshold) return true
    if (clock() < this.#openUntil || this.#probing) return false
    this.#probing = true
    return true
  }

  success(): void {
    this.#failures = 0
    this.#probing = false
  }

  failure(): void {
    this.#failures++
    if (this.#failures >= this.#threshold) {
      if (this.#probing || this.#failures === this.#threshold) this.#opened++
      this.#openUntil = clock() + this.#openForMs
      this.#probing = false
    }
  }

  /** A call that gave no verdict on the tier (it was never sent): frees the probe slot, counts nothing. */
  release(): void {
    this.#probing = false
  }

  get state(): 'closed' | 'open' | 'half-open' {
    if (this.#failures < this.#threshold) return 'closed'
    return clock() < this.#openUntil ? 'open' : 'half-open'
  }

  /** Times the circuit opened. */
  get openings(): number {
    return this.#opened
  }
}
