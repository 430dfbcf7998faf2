// The routes of the service: reads through the cache, writes to the database
// and then invalidate what they changed, on every instance.
//
//   GET /products/:id       @tiercache/http's expressRoute: 200 JSON with Cache-Control, ETag and
//                           Last-Modified, 304 on a matching If-None-Match, 404 for no such product
//   GET /categories/:name   cache.getOrSet with a tag: the products of a category
//   PUT /products/:id       writes the database, then cache.invalidateTags (every instance drops its copies);
//                           503 when Redis is unreachable (the row is written, the invalidation is not: retry)
//   GET /health             this instance's name and how many database queries it has made
import { PublishError, WriteFailedError } from '@tiercache/core'
import { expressRoute } from '@tiercache/http'
import express from 'express'
import { NAME } from './db.mjs'

/** A client error: the error handler answers it with its status and message. */
class RequestError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

export function createApp({ cache, db, instance, log }) {
  const app = express()
  // The ETags are tiercache's (a hash of the cached value, the same on every
  // instance), not Express's hash of each response body.
  app.set('etag', false)
  app.disable('x-powered-by')
  // Which instance answered: the walkthrough switches between two.
  app.use((_req, res, next) => {
    res.setHeader('x-instance', instance)
    next()
  })
  // Ids and category names become cache keys and tags: refuse anything else up front.
  for (const param of ['id', 'name']) {
    app.param(param, (_req, _res, next, value) => next(NAME.test(value) ? undefined : new RequestError(400, `${param} must match ${NAME}`)))
  }

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', instance, databaseQueries: db.queries() })
  })

  // One product. A miss loads it (20 ms) and stores it in L1 and Redis under
  // the tag product:<id>; any instance then answers it from L1 or Redis with
  // the same ETag, and answers 304 when the client already has it.
  app.get(
    '/products/:id',
    expressRoute(cache, {
      key: (req) => `product:${req.params.id}`,
      load: (req) => db.product(req.params.id),
      tags: (req) => [`product:${req.params.id}`],
    }),
  )

  // A category's products: the plain read-through call, tagged so that a
  // write to any product in it can drop the listing by tag (its key is not
  // the product's).
  app.get('/categories/:name', async (req, res, next) => {
    try {
      const { name } = req.params
      const products = await cache.getOrSet(`category:${name}`, () => db.productsIn(name), { tags: [`category:${name}`] })
      res.json({ category: name, products })
    } catch (error) {
      next(error)
    }
  })

  // A write: the database first, then the cache. invalidateTags makes every
  // entry under those tags a miss in Redis and, over the bus, drops it from
  // every instance's L1 (this one's at once); it resolves once Redis has
  // taken it. The next read anywhere loads the new row.
  app.put('/products/:id', express.json(), async (req, res, next) => {
    try {
      const { id } = req.params
      const result = await db.updateProduct(id, changesOf(req.body))
      if (result === undefined) throw new RequestError(404, `no product ${id}`)
      // The product itself, the listing it was in, and the one it is in now.
      const tags = [...new Set([`product:${id}`, `category:${result.before.category}`, `category:${result.after.category}`])]
      try {
        await cache.invalidateTags(tags)
      } catch (error) {
        // Redis is unreachable (WriteFailedError; PublishError where the
        // bus publishes apart from the tier's write): the row is written, but
        // Redis may serve the old one until the entry expires. Say so; the
        // PUT is safe to retry.
        if (!(error instanceof WriteFailedError || error instanceof PublishError)) throw error
        log(`PUT /products/${id}: database written, invalidation failed: ${error.message}`)
        res.status(503).json({ error: `product ${id} was written, but the cache could not be invalidated (Redis is unreachable): retry the PUT` })
        return
      }
      log(`PUT /products/${id}: database written, invalidated ${tags.join(' ')}`)
      res.json(result.after)
    } catch (error) {
      next(error)
    }
  })

  app.use((error, _req, res, _next) => {
    const status = error.status ?? error.statusCode ?? 500
    if (status >= 500) log(`error: ${error.stack ?? error}`)
    res.status(status).json({ error: status >= 500 ? 'internal error (see the server log)' : error.message })
  })
  return app
}

/** The fields a PUT may change, checked: `{ name?, category?, price? }`. */
function changesOf(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new RequestError(400, 'expected a JSON object: { name?, category?, price? }')
  const changes = {}
  for (const [field, value] of Object.entries(body)) {
    if (field === 'name' && typeof value === 'string' && value.length > 0) changes.name = value
    else if (field === 'category' && typeof value === 'string' && NAME.test(value)) changes.category = value
    else if (field === 'price' && typeof value === 'number' && Number.isFinite(value) && value >= 0) changes.price = value
    else throw new RequestError(400, `${field}: ${JSON.stringify(value)} is not a valid value (name: text, category: ${NAME}, price: a number >= 0)`)
  }
  return changes
}
