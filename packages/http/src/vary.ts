/**
 * A `Vary` value that keeps the names a response already carries (set by
 * compression or CORS middleware before the route ran) and adds ours,
 * without repeating a name (header names are case-insensitive). `*` alone
 * covers every name.
 */
export function mergeVary(existing: number | string | readonly string[] | undefined, ours: string): string {
  const current = existing === undefined ? '' : typeof existing === 'number' ? String(existing) : typeof existing === 'string' ? existing : existing.join(', ')
  const names: string[] = []
  for (const raw of `${current},${ours}`.split(',')) {
    const name = raw.trim()
    if (name !== '' && !names.some((n) => n.toLowerCase() === name.toLowerCase())) names.push(name)
  }
  return names.includes('*') ? '*' : names.join(', ')
}
