import { InvalidArgumentError, InvalidOptionError, isTierCacheError } from '@tiercache/core'
import { describe, expect, it } from 'vitest'
import { cacheHeaders, tagForHeader, type EntryDescription } from '../src/index.js'

const CREATED = Date.UTC(2025, 0, 2, 3, 4, 5, 678)
const entry: EntryDescription = { etag: '"00112233aabbccdd"', createdAt: CREATED, expiresAt: CREATED + 600_000, tags: [] }
/** A clock fixed `ms` after the entry's creation. */
const at = (ms: number) => () => CREATED + ms

describe('cacheHeaders', () => {
  it('defaults to private, revalidated every time, with the ETag and Last-Modified', () => {
    expect(cacheHeaders(entry)).toEqual({
      'cache-control': 'private, no-cache',
      etag: '"00112233aabbccdd"',
      'last-modified': 'Thu, 02 Jan 2025 03:04:05 GMT',
    })
  })

  it('public', () => {
    expect(cacheHeaders(entry, { visibility: 'public' })['cache-control']).toBe('public, no-cache')
  })

  it("maxAge 'remaining' counts down with the entry's age, in whole seconds rounded down, never below 0", () => {
    const maxAge = (ms: number) => cacheHeaders(entry, { maxAge: 'remaining', now: at(ms) })['cache-control']
    expect(maxAge(0)).toBe('private, max-age=600')
    expect(maxAge(1)).toBe('private, max-age=599')
    expect(maxAge(1_000)).toBe('private, max-age=599')
    expect(maxAge(299_999)).toBe('private, max-age=300')
    expect(maxAge(300_000)).toBe('private, max-age=300')
    expect(maxAge(599_001)).toBe('private, max-age=0')
    expect(maxAge(600_000)).toBe('private, max-age=0')
    expect(maxAge(900_000)).toBe('private, max-age=0')
  })

  it('a duration caps the remaining life; numbers are milliseconds', () => {
    const capped = (maxAge: string | number, ms: number) => cacheHeaders(entry, { visibility: 'public', maxAge, now: at(ms) })['cache-control']
    expect(capped('30s', 0)).toBe('public, max-age=30')
    expect(capped(30_000, 0)).toBe('public, max-age=30')
    expect(capped('1h', 0)).toBe('public, max-age=600')
    expect(capped('30s', 580_500)).toBe('public, max-age=19')
    expect(capped('1m30s', 0)).toBe('public, max-age=90')
    expect(capped('1500ms', 0)).toBe('public, max-age=1')
  })

  it('stale-while-revalidate after max-age', () => {
    expect(cacheHeaders(entry, { maxAge: 'remaining', staleWhileRevalidate: '1m', now: at(0) })['cache-control']).toBe(
      'private, max-age=600, stale-while-revalidate=60',
    )
  })

  it('vary: one name, a comma list or an array, without repeats', () => {
    expect(cacheHeaders(entry, { vary: 'Accept-Language' }).vary).toBe('Accept-Language')
    expect(cacheHeaders(entry, { vary: 'accept, accept-language' }).vary).toBe('accept, accept-language')
    expect(cacheHeaders(entry, { vary: ['Accept', 'accept', 'Cookie'] }).vary).toBe('Accept, Cookie')
    expect(cacheHeaders(entry, { vary: '*' }).vary).toBe('*')
  })

  it('cache-tag and surrogate-key from the entry tags, only when asked and only when there are tags', () => {
    const tagged = { ...entry, tags: ['user:42', 'team 7', 'a,b', 'café'] }
    expect(cacheHeaders(tagged)).not.toHaveProperty('cache-tag')
    expect(cacheHeaders(tagged)).not.toHaveProperty('surrogate-key')
    const headers = cacheHeaders(tagged, { cacheTag: true, surrogateKey: true })
    expect(headers['cache-tag']).toBe('user:42,team%207,a%2Cb,caf%C3%A9')
    expect(headers['surrogate-key']).toBe('user:42 team%207 a%2Cb caf%C3%A9')
    expect(cacheHeaders(entry, { cacheTag: true, surrogateKey: true })).not.toHaveProperty('cache-tag')
    expect(tagForHeader('user:42')).toBe('user:42')
    expect(tagForHeader('team 7')).toBe('team%207')
  })

  it('every header value is a plain string Node can send', () => {
    const headers = cacheHeaders({ ...entry, tags: ['ünï', 'x\ty'] }, { maxAge: 'remaining', vary: 'accept', cacheTag: true, surrogateKey: true })
    for (const value of Object.values(headers)) expect(value).toMatch(/^[\x20-\x7e]+$/)
  })
})

describe('cacheHeaders: bad options are InvalidOptionError naming the option', () => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ['visibility', { visibility: 'shared' }],
    ['maxAge', { maxAge: 'soon' }],
    ['maxAge', { maxAge: -5 }],
    ['maxAge', { maxAge: 0 }],
    ['maxAge', { maxAge: 30 }],
    ['maxAge', { maxAge: '500ms' }],
    ['maxAge', { maxAge: true }],
    ['staleWhileRevalidate', { staleWhileRevalidate: '1m' }],
    ['staleWhileRevalidate', { maxAge: 'remaining', staleWhileRevalidate: 'later' }],
    ['vary', { vary: 'bad header' }],
    ['vary', { vary: [] }],
    ['vary', { vary: 42 }],
    ['cacheTag', { cacheTag: 'yes' }],
    ['surrogateKey', { surrogateKey: 1 }],
    ['now', { now: 1_700_000_000_000 }],
    ['maxage', { maxage: 'remaining' }],
  ]
  for (const [option, options] of bad) {
    it(`${option}: ${JSON.stringify(options)}`, () => {
      let thrown: unknown
      try {
        cacheHeaders(entry, options)
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(InvalidOptionError)
      expect(isTierCacheError(thrown, 'ERR_INVALID_OPTION')).toBe(true)
      expect((thrown as Error).message).toContain(option)
    })
  }

  it('a number under a second says numbers are milliseconds', () => {
    expect(() => cacheHeaders(entry, { maxAge: 60 })).toThrow(/milliseconds.*'60s'/)
  })

  it('an entry that is not one from getOrSetEntry is InvalidArgumentError', () => {
    expect(() => cacheHeaders({ etag: '"x"' } as unknown as EntryDescription)).toThrow(InvalidArgumentError)
    expect(() => cacheHeaders(undefined as unknown as EntryDescription)).toThrow(/getOrSetEntry/)
  })
})
