/**
 * Producing values, for the single-key miss path (load.ts) and the batch
 * one (batch.ts) alike: a factory or batch loader run under the cache's
 * timeouts and booked the same way (one factory call, its misses, its
 * latency, its error), and the deferred promise a load in flight hands to
 * the callers that join it.
 */
import { clock } from '../clock.js'
import { InvalidArgumentError } from '../errors.js'
import { type Factory, FactoryCall, type FactoryTimeouts, runFactory } from '../factory.js'
import type { LatencyHistogram } from '../histogram.js'
import type { Counters } from './stats.js'

export interface ProductionBook {
  readonly name: string
  /** Where running factory calls are kept, so that closing the cache aborts their `signal`. */
  readonly local: { readonly running: Set<{ abort(reason: unknown): void }> }
  readonly counters: Counters
  readonly factoryLatency: LatencyHistogram
}

/** A production's outcome and how long it took (ms); failures are values here, so each path decides what they mean. */
export type Produced<T> = { readonly ok: true; readonly value: T; readonly ms: number } | { readonly ok: false; readonly error: unknown; readonly ms: number }

/** Runs `factory` for `misses` keys under `timeouts` and books it. Never rejects. */
export async function produce<T>(
  book: ProductionBook,
  misses: number,
  factory: Factory<T>,
  call: FactoryCall<T>,
  timeouts: FactoryTimeouts,
): Promise<Produced<T>> {
  const started = clock()
  book.counters.factoryCalls++
  book.counters.misses += misses
  book.local.running.add(call)
  try {
    const value = await runFactory(factory, call, book.name, timeouts)
    const ms = clock() - started
    book.factoryLatency.record(ms)
    return { ok: true, value, ms }
  } catch (error) {
    const ms = clock() - started
    book.factoryLatency.record(ms)
    book.counters.factoryErrors++
    return { ok: false, error, ms }
  } finally {
    book.local.running.delete(call)
    if (call.aborted) book.counters.factoriesAborted++
  }
}

/** A batch loader's result: a Map, or an array aligned with the keys it was given. */
export type Loaded<V> = Map<string, V> | V[]

/** Runs a batch loader for `keys` under `hardTimeoutMs` and books it like `produce`; a result of any other shape is an error. */
export function produceBatch<V>(
  book: ProductionBook,
  keys: string[],
  loader: (keys: string[]) => Promise<Loaded<V>> | Loaded<V>,
  hardTimeoutMs: number | undefined,
): Promise<Produced<Loaded<V>>> {
  const run = async (): Promise<Loaded<V>> => {
    const loaded = await loader(keys)
    if (loaded instanceof Map || Array.isArray(loaded)) return loaded
    throw new InvalidArgumentError('getOrSetMany: the loader must return a Map or an array aligned with the keys it was given', { cache: book.name })
  }
  return produce<Loaded<V>>(book, keys.length, run, new FactoryCall(book.name, keys.join(','), undefined), {
    softTimeoutMs: undefined,
    hardTimeoutMs,
    onSoftTimeout: undefined,
  })
}

export interface Deferred<T> {
  readonly promise: Promise<T>
  resolve(value: T): void
  reject(error: unknown): void
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}
