import { describe, expect, it } from 'vitest'
import { parseHttpDate } from '../src/http-date.js'
import { notModified } from '../src/index.js'

const CREATED = Date.UTC(2025, 0, 2, 3, 4, 5, 678)
const LAST_MODIFIED = 'Thu, 02 Jan 2025 03:04:05 GMT'
const entry = { etag: '"00112233aabbccdd"', createdAt: CREATED }

describe('If-None-Match', () => {
  const matches = (value: string | string[]) => notModified({ 'if-none-match': value }, entry)

  it('the entry tag, alone or anywhere in a list', () => {
    expect(matches('"00112233aabbccdd"')).toBe(true)
    expect(matches('"aaaa", "00112233aabbccdd"')).toBe(true)
    expect(matches('"aaaa","00112233aabbccdd","bbbb"')).toBe(true)
    expect(matches(' \t"00112233aabbccdd" , "bbbb"')).toBe(true)
    expect(matches(['"aaaa"', '"00112233aabbccdd"'])).toBe(true)
  })

  it('weak comparison: W/ on the request tag still matches', () => {
    expect(matches('W/"00112233aabbccdd"')).toBe(true)
    expect(matches('"aaaa", W/"00112233aabbccdd"')).toBe(true)
  })

  it('* matches any entry', () => {
    expect(matches('*')).toBe(true)
    expect(matches(' * ')).toBe(true)
  })

  it('other tags, unquoted tags and near misses do not match', () => {
    expect(matches('"00112233aabbccde"')).toBe(false)
    expect(matches('00112233aabbccdd')).toBe(false)
    expect(matches('"00112233AABBCCDD"')).toBe(false)
    expect(matches('"00112233aabbccdd')).toBe(false)
    expect(matches('w/"00112233aabbccdd"')).toBe(false)
    expect(matches('')).toBe(false)
    expect(matches([])).toBe(false)
  })

  it('a comma inside a quoted tag is part of the tag, not a separator', () => {
    const comma = { etag: '"a,b"', createdAt: CREATED }
    expect(notModified({ 'if-none-match': '"x", "a,b"' }, comma)).toBe(true)
    expect(notModified({ 'if-none-match': '"a", "b"' }, comma)).toBe(false)
    expect(notModified({ 'if-none-match': '"x,"00112233aabbccdd""' }, entry)).toBe(false)
  })

  it('a malformed member is skipped, the others still count', () => {
    expect(matches('junk, "00112233aabbccdd"')).toBe(true)
    expect(matches('"aaaa"junk, W/"00112233aabbccdd"')).toBe(true)
    expect(matches('*, "00112233aabbccdd"')).toBe(true)
  })

  it('when present, If-Modified-Since is not looked at (RFC 9110 §13.1.3)', () => {
    expect(notModified({ 'if-none-match': '"other"', 'if-modified-since': LAST_MODIFIED }, entry)).toBe(false)
  })
})

describe('If-Modified-Since', () => {
  const since = (value: string | string[]) => notModified({ 'if-modified-since': value }, entry)

  it('not modified at or after Last-Modified (second precision), modified before it', () => {
    expect(since(LAST_MODIFIED)).toBe(true)
    expect(since('Thu, 02 Jan 2025 03:04:06 GMT')).toBe(true)
    expect(since('Fri, 03 Jan 2025 00:00:00 GMT')).toBe(true)
    expect(since('Thu, 02 Jan 2025 03:04:04 GMT')).toBe(false)
  })

  it('reads the obsolete RFC 850 and asctime forms, in GMT', () => {
    expect(since('Thursday, 02-Jan-25 03:04:05 GMT')).toBe(true)
    expect(since('Thursday, 02-Jan-25 03:04:04 GMT')).toBe(false)
    expect(since('Thu Jan  2 03:04:05 2025')).toBe(true)
    expect(since('Thu Jan  2 03:04:04 2025')).toBe(false)
  })

  it('an invalid date, or more than one, is ignored', () => {
    expect(since('yesterday')).toBe(false)
    expect(since('2025-01-03T00:00:00Z')).toBe(false)
    expect(since('Fri, 31 Feb 2025 00:00:00 GMT')).toBe(false)
    expect(since([LAST_MODIFIED, LAST_MODIFIED])).toBe(false)
    expect(since([LAST_MODIFIED])).toBe(true)
  })

  it('no conditional header: modified', () => {
    expect(notModified({}, entry)).toBe(false)
  })
})

describe('header shapes', () => {
  it('a Map keyed by lower-case names', () => {
    expect(notModified(new Map([['if-none-match', '"00112233aabbccdd"']]), entry)).toBe(true)
  })

  it('anything with get(name), such as Fetch Headers (case-insensitive)', () => {
    // Headers is global in Node 20; the package compiles without DOM types, so it is reached through globalThis.
    const FetchHeaders = (globalThis as unknown as { Headers: new (init: Record<string, string>) => { get(name: string): string | null } }).Headers
    expect(notModified(new FetchHeaders({ 'If-None-Match': 'W/"00112233aabbccdd"' }), entry)).toBe(true)
    expect(notModified(new FetchHeaders({ 'If-Modified-Since': LAST_MODIFIED }), entry)).toBe(true)
    expect(notModified(new FetchHeaders({}), entry)).toBe(false)
  })
})

describe('parseHttpDate', () => {
  it('the three forms agree', () => {
    const ms = Date.UTC(1994, 10, 6, 8, 49, 37)
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(ms)
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT')).toBe(ms)
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994')).toBe(ms)
  })

  it('rejects what is not an HTTP date', () => {
    for (const text of ['Sun, 06 Nov 1994 08:49:37 UTC', 'Sun, 06 Nov 1994 25:49:37 GMT', 'Sun, 06 Foo 1994 08:49:37 GMT', '784111777', '']) {
      expect(parseHttpDate(text), text).toBeUndefined()
    }
  })
})
