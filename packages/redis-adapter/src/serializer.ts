import { Packr } from 'msgpackr'
import { SerializationError, type Serializer } from '@tiercache/core'

/**
 * The default encoding of values in Redis: msgpack with msgpackr's extended
 * types, so Date, Map, Set, BigInt, undefined, RegExp, Error and typed arrays
 * round-trip. No shared record structures: every message is self-describing,
 * which is what lets a fresh process decode what another wrote.
 */
export function msgpackSerializer(): Serializer {
  const packr = new Packr({ moreTypes: true })
  return {
    encode: (value) => packr.pack(value),
    decode: (bytes) => packr.unpack(bytes),
  }
}

/**
 * msgpack silently turns a function into `undefined` and loops forever on a
 * cycle; both are caller bugs that must fail loudly, before any write. The
 * walk is on the write path only, never on reads.
 */
export function assertEncodable(value: unknown, context: { cache: string; key: string; tier: string }): void {
  const ancestors: object[] = []
  const visit = (node: unknown, path: string): void => {
    const type = typeof node
    if (type === 'function' || type === 'symbol') {
      throw new SerializationError(`value at ${path} is a ${type}, which cannot be stored in a shared tier`, context)
    }
    if (node === null || type !== 'object') return
    const object = node as object
    if (ancestors.includes(object)) {
      throw new SerializationError(`value at ${path} is circular, which cannot be stored in a shared tier`, context)
    }
    if (ArrayBuffer.isView(object) || object instanceof Date || object instanceof RegExp) return
    ancestors.push(object)
    if (object instanceof Map) {
      for (const [k, v] of object) {
        visit(k, `${path}<key>`)
        visit(v, `${path}.get(${String(k)})`)
      }
    } else if (object instanceof Set) {
      for (const v of object) visit(v, `${path}<item>`)
    } else if (Array.isArray(object)) {
      object.forEach((v, i) => visit(v, `${path}[${i}]`))
    } else {
      for (const k of Object.keys(object)) visit((object as Record<string, unknown>)[k], `${path}.${k}`)
    }
    ancestors.pop()
  }
  visit(value, 'value')
}
