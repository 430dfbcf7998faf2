import { compileRoute, type EntrySource, type HttpRequestLike, type RouteAnswer, type RouteOptions } from './route.js'
import { mergeVary } from './vary.js'

/**
 * The parts of a Fastify request a route reads (structural: this package
 * does not depend on fastify). To read `params`, annotate `req` with
 * Fastify's own type: `(req: FastifyRequest<{ Params: { id: string } }>)`.
 */
export interface FastifyLikeRequest extends HttpRequestLike {}

/** The parts of a Fastify reply a route writes with. */
export interface FastifyLikeReply {
  code(statusCode: number): unknown
  header(name: string, value: string): unknown
  getHeader(name: string): number | string | string[] | undefined
  type(contentType: string): unknown
  send(payload?: unknown): unknown
}

/**
 * A Fastify handler that answers from the cache: 200 with the value as JSON
 * and the cache headers, 304 (no body) when the client's copy is current,
 * 404 when `load` gave `null`/`undefined`. Errors (from `key`, `load` or the
 * cache) reject, so Fastify's error handler answers them. Fastify answers
 * HEAD with a GET route's handler, without the body.
 *
 *   app.get('/users/:id', fastifyRoute(cache, { key: (req: FastifyRequest<{ Params: { id: string } }>) => `user:${req.params.id}`, load: … }))
 *
 * Options are checked here, once: a bad one throws `InvalidOptionError`.
 */
export function fastifyRoute<V, Req extends FastifyLikeRequest = FastifyLikeRequest, Reply extends FastifyLikeReply = FastifyLikeReply>(
  cache: EntrySource<V>,
  options: RouteOptions<Req, V>,
): (request: Req, reply: Reply) => Promise<Reply> {
  const answer = compileRoute('fastifyRoute', cache, options)
  return async (request, reply) => {
    const result = await answer(request, request.method, request.headers)
    write(reply, result)
    // An async handler that has called send returns the reply, so Fastify does not send its resolved value too.
    return reply
  }
}

function write<V>(reply: FastifyLikeReply, result: RouteAnswer<V>): void {
  for (const [name, value] of Object.entries(result.headers)) {
    // Another hook (compression, CORS) may have set Vary already: add to it, never drop its names.
    reply.header(name, name === 'vary' ? mergeVary(reply.getHeader('vary'), value) : value)
  }
  reply.code(result.status)
  if (result.status !== 200) {
    reply.send()
    return
  }
  const body = result.body
  // Fastify sends a string as text/plain; this route's body is always JSON. Other values go through Fastify's serializer (a route's response schema included).
  if (typeof body === 'string') {
    reply.type('application/json; charset=utf-8')
    reply.send(JSON.stringify(body))
  } else {
    reply.send(body)
  }
}
