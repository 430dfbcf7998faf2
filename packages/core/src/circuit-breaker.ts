import { clock } from './clock.js'

/**
 * Skips a failing shared tier for a cool-down instead of making every caller
 * wait out its timeout: closed (counting consecutive failures) → open (every
 * call skips the tier) → half-open (a probe decides: success closes, failure
 * opens again).
 *
 * The probe is never a user's request. A request that probed a dead Redis
 * waited the whole tier timeout (0.6–1.0 s, about one request every 2 s in
 * an outage measured before this change); with `probe` set, the owner runs
 * it in the background when the cool-down ends (`probeDue`), and requests
 * keep skipping the tier until it answers.
 */
export class CircuitBreaker {
  readonly #threshold: number
  readonly openForMs: number
  #failures = 0
  #openUntil = 0
  #probing = false
  #opened = 0
  /** Set by the owner when it probes in the background: half-open then admits no request. */
  backgroundProbe = false

  constructor(threshold: number, openForMs: number) {
    this.#threshold = threshold
    this.openForMs = openForMs
  }

  /** May a call go to the tier now? Half-open: only the probe, and with a background probe, no request at all. */
  allow(): boolean {
    if (this.#failures < this.#threshold) return true
    if (this.backgroundProbe || clock() < this.#openUntil || this.#probing) return false
    this.#probing = true
    return true
  }

  /** The background probe may start: the circuit is open, its cool-down over, and no probe runs. Marks it running. */
  beginProbe(): boolean {
    if (this.#failures < this.#threshold || clock() < this.#openUntil || this.#probing) return false
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
      // Counted once per opening from closed: a failed probe keeps it open, it does not open it again.
      if (this.#failures === this.#threshold) this.#opened++
      this.#openUntil = clock() + this.openForMs
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

  /** Time left before the cool-down ends, ms (0 when closed or half-open). */
  get coolDownLeftMs(): number {
    return this.#failures < this.#threshold ? 0 : Math.max(0, this.#openUntil - clock())
  }

  /** Times the circuit opened. */
  get openings(): number {
    return this.#opened
  }
}
