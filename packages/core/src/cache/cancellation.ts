/**
 * Cancellation: a caller's own `signal` on `getOrSet`, and the factory's
 * `ctx.signal`. A caller that aborts rejects with `signal.reason` and leaves
 * the others unharmed; once every caller of a load has gone, the load's
 * factory is aborted too — unless the load holds the key's lease (other
 * processes may be waiting on it) or refreshes behind an answer (`keep`).
 * Hard timeouts and `close()` abort `ctx.signal` where they happen
 * (factory.ts, local-state.ts).
 */
import type { Load, LocalState } from './local-state.js'

/**
 * A caller's view of a load with its own `signal`: it rejects with
 * `signal.reason` when the signal aborts, and the load itself is aborted
 * (its factory's `ctx.signal`) once every caller has gone — unless it
 * holds the lease or refreshes behind a stale answer (`keep`).
 */
export function abandonable<V>(local: LocalState<V>, key: string, load: Load<V>, signal: AbortSignal): Promise<V> {
  return untilAborted(load.promise, signal, () => {
    load.abandoned++
    load.abandonReason = signal.reason
    if (!load.keep && load.abandoned >= load.callers) {
      // No one waits: later callers start afresh instead of joining an aborted load.
      if (local.inFlight.get(key) === load) local.inFlight.delete(key)
      load.call?.abort(signal.reason)
    }
  })
}

/** `promise`, or its rejection with `signal.reason` once `signal` aborts first (`onAbort` runs then, before the rejection). */
export function untilAborted<V>(promise: Promise<V>, signal: AbortSignal | undefined, onAbort?: () => void): Promise<V> {
  if (signal === undefined) return promise
  return new Promise<V>((resolve, reject) => {
    const aborted = () => {
      onAbort?.()
      reject(signal.reason)
    }
    signal.addEventListener('abort', aborted, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', aborted)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', aborted)
        reject(error)
      },
    )
  })
}
