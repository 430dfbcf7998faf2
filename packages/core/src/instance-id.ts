import { randomBytes } from 'node:crypto'

/** A short random id for one cache instance; carried by every invalidation it publishes. */
export function newInstanceId(): string {
  return randomBytes(9).toString('base64url')
}
