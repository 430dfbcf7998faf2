import { decodeInvalidations, errorMessageOf, type BusMembers } from '@tiercache/core'

/** Unanswered probes beyond which a subscriber connection is taken for half-dead and reconnected. */
export const MAX_OUTSTANDING_PROBES = 8

/** Settles with `pending`, or rejects once `timeoutMs` have passed; the error names the channel. */
export async function publishWithin(pending: Promise<void>, timeoutMs: number, channel: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      pending,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`publish timed out after ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
  } catch (error) {
    pending.catch(() => {})
    throw new Error(`publish on ${channel} failed: ${errorMessageOf(error)}`, { cause: error })
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Decodes one bus message and hands each invalidation to its cache's members;
 * returns how many were dropped: 1 for a message that is not one of the
 * protocol (garbage, another version, over MAX_MESSAGE_BYTES), else its
 * malformed entries. Runs in the subscriber connection's data handler, so it
 * never throws (the decoder does not, members' throws are caught by
 * BusMembers) and each message costs at most one bounded decode: a flood is
 * counted and dropped a message at a time, with the event loop turning
 * between socket reads.
 */
export function deliverMessage(members: BusMembers, message: string | Uint8Array): number {
  const decoded = decodeInvalidations(message)
  if (decoded === undefined) return 1
  // One pass over the batch; each member evicts as it goes.
  for (const { origin, invalidation } of decoded.invalidations) members.deliver(origin, invalidation)
  return decoded.dropped
}
