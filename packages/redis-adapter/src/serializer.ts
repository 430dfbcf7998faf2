import { Packr } from 'msgpackr'
import { SerializationError, errorMessageOf, type Serializer, type TierEntry } from '@tiercache/core/adapter'
import { ENVELOPE_VERSION } from './entry-codec.js'

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
 * msgpack silently turns a function into `undefined`, a Promise or a class
 * instance into a plain object (its prototype, getters and #private fields
 * lost), and loops forever on a cycle. All are caller bugs — a missing
 * `await` puts a Promise in the cache — that must fail loudly, before any
 * write. Accepted: primitives, plain objects (prototype Object.prototype or
 * null), arrays, and the types msgpackr round-trips: Date, RegExp, Error,
 * Map, Set, ArrayBuffer and its views (Buffer, typed arrays). Refused too: an
 * own property named `__proto__` (msgpackr renames it on decode, so it would
 * not come back). The walk is on the write path only, never on reads.
 */
export function assertEncodable(value: unknown, context: { cache: string; key: string; tier: string }): void {
  const ancestors: object[] = []
  const reject = (path: string, what: string): never => {
    throw new SerializationError(`value at ${path} is ${what}, which cannot be stored in a shared tier`, context)
  }
  const visit = (node: unknown, path: string): void => {
    const type = typeof node
    if (type === 'function' || type === 'symbol') reject(path, `a ${type}`)
    if (node === null || type !== 'object') return
    const object = node as object
    if (ancestors.includes(object)) reject(path, 'circular')
    if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer || object instanceof Date || object instanceof RegExp) return
    ancestors.push(object)
    if (object instanceof Map) {
      for (const [k, v] of object) {
        visit(k, `${path}<key>`)
        // Not String(k): a null-prototype object key has no toString and would throw a TypeError here.
        visit(v, `${path}.get(${typeof k === 'string' || typeof k === 'number' ? String(k) : `<${typeof k}>`})`)
      }
    } else if (object instanceof Set) {
      for (const v of object) visit(v, `${path}<item>`)
    } else if (Array.isArray(object)) {
      object.forEach((v, i) => visit(v, `${path}[${i}]`))
    } else if (object instanceof Error) {
      // msgpackr keeps name, message and stack
    } else {
      const prototype: unknown = Object.getPrototypeOf(object)
      if (prototype !== Object.prototype && prototype !== null) {
        const name = (prototype as { constructor?: { name?: string } }).constructor?.name ?? 'an object with a custom prototype'
        reject(path, `an instance of ${name} (it would come back as a plain object; store plain data instead)`)
      }
      for (const k of Object.keys(object)) {
        // An own "__proto__" property is renamed by msgpackr on decode (it will not set a prototype): refused rather than changed.
        if (k === '__proto__') reject(`${path}.__proto__`, 'an own property named __proto__')
        visit((object as Record<string, unknown>)[k], `${path}.${k}`)
      }
    }
    ancestors.pop()
  }
  visit(value, 'value')
}

/**
 * An entry's stored envelope, `[version, createdAt, graceMs, value]`, in the
 * tier's serializer. Refuses, with a SerializationError naming the cache and
 * key and before anything is sent, a value that cannot round-trip or that
 * encodes to more than `maxValueBytes`.
 */
export function encodeEnvelope(entry: TierEntry, serializer: Serializer, maxValueBytes: number, context: { cache: string; key: string; tier: string }): Buffer {
  assertEncodable(entry.value, context)
  let bytes: Uint8Array
  try {
    const graceMs = Math.max(0, Math.round((entry.staleUntil ?? entry.expiresAt) - entry.expiresAt))
    bytes = serializer.encode([ENVELOPE_VERSION, entry.createdAt, graceMs, entry.value])
  } catch (error) {
    throw new SerializationError(`value cannot be encoded: ${errorMessageOf(error)}`, { ...context, cause: error })
  }
  if (bytes.byteLength > maxValueBytes) {
    throw new SerializationError(`encoded value is ${bytes.byteLength} bytes, over maxValueBytes ${maxValueBytes}`, context)
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
