// The "database" of the example: one JSON file per product in a directory
// (DB_DIR) that every instance reads and writes. An in-process Map would not
// do: each instance would hold its own copy, and after a write on instance B
// instance A would reload its own, older row. Every query first waits
// `queryMs` (20 ms by default), so a read that reaches the database stands out
// from one the cache answered.
import { randomUUID } from 'node:crypto'
import { link, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

/** What a fresh database holds. Written only where a product's file does not exist yet. */
const SEED = [
  { id: '1', name: 'Espresso cup', category: 'kitchen', price: 9.5 },
  { id: '2', name: 'French press', category: 'kitchen', price: 29 },
  { id: '3', name: 'Desk lamp', category: 'office', price: 45 },
  { id: '4', name: 'Notebook', category: 'office', price: 4.25 },
]

/** Ids and category names are path segments and cache keys: letters, digits, `-` and `_`, at most 64. */
export const NAME = /^[\w-]{1,64}$/

/**
 * Opens (and seeds, if empty) the database in `dir`. `onQuery(what)` is
 * called for every query, e.g. to log it.
 */
export async function openDatabase({ dir, queryMs = 20, onQuery = () => {} }) {
  await mkdir(dir, { recursive: true })
  for (const row of SEED) await createIfAbsent(dir, row)
  let queries = 0
  const query = async (what) => {
    queries++
    onQuery(what)
    await sleep(queryMs)
  }
  const fileOf = (id) => join(dir, `${id}.json`)

  return {
    /** The product, or undefined if there is none with that id. */
    async product(id) {
      await query(`product ${id}`)
      return NAME.test(id) ? readRow(fileOf(id)) : undefined
    },

    /** Every product in a category, by id. */
    async productsIn(category) {
      await query(`products in ${category}`)
      const rows = await Promise.all((await readdir(dir)).filter((f) => f.endsWith('.json')).map((f) => readRow(join(dir, f))))
      return rows.filter((row) => row !== undefined && row.category === category).sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }))
    },

    /** Applies `changes` to a product: `{ before, after }`, or undefined if there is no such product. */
    async updateProduct(id, changes) {
      await query(`update product ${id}`)
      if (!NAME.test(id)) return undefined
      const before = await readRow(fileOf(id))
      if (before === undefined) return undefined
      const after = { ...before, ...changes, id }
      await replaceFile(fileOf(id), after)
      return { before, after }
    },

    /** How many queries this process has made. */
    queries: () => queries,
  }
}

async function readRow(file) {
  try {
    return JSON.parse(await readFile(file, 'utf8'))
  } catch (error) {
    if (error.code === 'ENOENT') return undefined
    throw error
  }
}

/** A whole new file in place of the old one: a reader in another process sees the old row or the new, never half of one. */
async function replaceFile(file, row) {
  const temporary = `${file}.${randomUUID()}.tmp`
  await writeFile(temporary, JSON.stringify(row))
  await rename(temporary, file)
}

/** Creates the file unless it exists: two instances starting at once both seed, and neither overwrites a row the other has changed. */
async function createIfAbsent(dir, row) {
  const temporary = join(dir, `${row.id}.json.${randomUUID()}.tmp`)
  await writeFile(temporary, JSON.stringify(row))
  try {
    await link(temporary, join(dir, `${row.id}.json`))
  } catch (error) {
    if (error.code !== 'EEXIST') throw error
  } finally {
    await unlink(temporary)
  }
}
