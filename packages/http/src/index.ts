/**
 * `@tiercache/http`: tiercache entries as HTTP resources. `cacheHeaders`
 * turns an entry from `getOrSetEntry` into Cache-Control, ETag and
 * Last-Modified; `notModified` evaluates a request's If-None-Match and
 * If-Modified-Since against it; `expressRoute` and `fastifyRoute` do both
 * for a route. No runtime dependency but `@tiercache/core`: the framework
 * types are structural.
 */
export { cacheHeaders, tagForHeader } from './headers.js'
export type { CacheHeaders, EntryDescription } from './headers.js'
export type { HeaderOptions } from './options.js'
export { notModified } from './conditional.js'
export type { RequestHeaders } from './conditional.js'
export type { EntrySource, HttpRequestLike, RouteAnswer, RouteOptions } from './route.js'
export { expressRoute } from './express.js'
export type { ExpressLikeRequest, ExpressLikeResponse } from './express.js'
export { fastifyRoute } from './fastify.js'
export type { FastifyLikeReply, FastifyLikeRequest } from './fastify.js'
