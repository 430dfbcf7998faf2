import type { Bus } from './contracts.js'
import { InvalidOptionError } from './errors.js'

// The `buses` option of both metrics packages (@tiercache/prometheus, @tiercache/opentelemetry), in one place.

/**
 * The buses whose health to export: an array (`[bus]`: each labelled by its
 * position, `"0"`, `"1"`, …, since a Bus has no name of its own) or an object
 * naming each (`{ main: bus }`: labelled by the names). Default: none.
 */
export type BusesOption = readonly Bus[] | Readonly<Record<string, Bus>>

/**
 * `buses` checked and labelled. Anything but an array of buses or an object
 * of buses throws InvalidOptionError, so a mistake shows at registration,
 * not as a scrape that silently lacks the bus series.
 */
export function labelledBuses(buses: unknown, owner: string): Array<readonly [string, Bus]> {
  if (buses === undefined) return []
  const accepted = 'an array of buses ([bus]) or an object naming each bus ({ main: bus })'
  if (Array.isArray(buses)) {
    return buses.map((bus: unknown, index) => {
      if (!isBus(bus))
        throw new InvalidOptionError(`${owner}: buses[${index}] is not a bus (a tiercache Bus has join() and status()); buses must be ${accepted}`)
      return [String(index), bus] as const
    })
  }
  if (isBus(buses)) throw new InvalidOptionError(`${owner}: buses must be ${accepted}, got a single bus: pass [bus]`)
  const prototype = buses !== null && typeof buses === 'object' ? Object.getPrototypeOf(buses) : undefined
  if (prototype !== Object.prototype && prototype !== null) {
    throw new InvalidOptionError(`${owner}: buses must be ${accepted}, got ${buses === null ? 'null' : typeof buses}`)
  }
  return Object.entries(buses as Record<string, unknown>).map(([name, bus]) => {
    if (!isBus(bus)) throw new InvalidOptionError(`${owner}: buses.${name} is not a bus (a tiercache Bus has join() and status()); buses must be ${accepted}`)
    return [name, bus] as const
  })
}

function isBus(value: unknown): value is Bus {
  const candidate = value as { join?: unknown; status?: unknown } | null
  return candidate !== null && typeof candidate === 'object' && typeof candidate.join === 'function' && typeof candidate.status === 'function'
}
