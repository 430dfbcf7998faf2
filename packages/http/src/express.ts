import { compileRoute, type EntrySource, type HttpRequestLike, type RouteAnswer, type RouteOptions } from './route.js'
import { mergeVary } from './vary.js'

/**
 * The request `key`, `load` and `tags` see unless they name their own type
 * (Express's `Request`, say). Structural, so this package needs neither
 * express nor @types/express. `params` as a route path's `:name`s give
 * them; annotate `req` for a wildcard path (Express gives its segments as
 * a list).
 */
export interface ExpressLikeRequest extends HttpRequestLike {
  readonly params: Record<string, string>
}

/** The parts of an Express response a route writes with. */
export interface ExpressLikeResponse {
  status(code: number): unknown
  setHeader(name: string, value: string): unknown
  getHeader(name: string): number | string | string[] | undefined
  json(body: unknown): unknown
  end(): unknown
}

/**
 * An Express handler that answers from the cache: 200 with the value as
 * JSON and the cache headers, 304 (no body) when the client's copy is
 * current, 404 when `load` gave `null`/`undefined`. Errors (from `key`,
 * `load` or the cache) go to `next(err)`. Mount it on a GET route (Express
 * answers HEAD with it too, without the body):
 *
 *   app.get('/users/:id', expressRoute(cache, { key: (req) => `user:${req.params.id}`, load: (req) => db.user(req.params.id) }))
 *
 * Options are checked here, once: a bad one throws `InvalidOptionError`.
 */
export function expressRoute<V, Req extends HttpRequestLike = ExpressLikeRequest>(
  cache: EntrySource<V>,
  options: RouteOptions<Req, V>,
): (req: Req, res: ExpressLikeResponse, next: (error?: unknown) => void) => Promise<void> {
  const answer = compileRoute('expressRoute', cache, options)
  return async (req, res, next) => {
    let result: RouteAnswer<V>
    try {
      result = await answer(req, req.method, req.headers)
    } catch (error) {
      next(error)
      return
    }
    write(res, result)
  }
}

function write<V>(res: ExpressLikeResponse, result: RouteAnswer<V>): void {
  for (const [name, value] of Object.entries(result.headers)) {
    // Another middleware (compression, CORS) may have set Vary already: add to it, never drop its names.
    res.setHeader(name, name === 'vary' ? mergeVary(res.getHeader('vary'), value) : value)
  }
  res.status(result.status)
  // res.json omits the body of a HEAD response itself.
  if (result.status === 200) res.json(result.body)
  else res.end()
}
