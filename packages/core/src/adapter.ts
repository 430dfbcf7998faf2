/**
 * `@tiercache/core/adapter`: what an adapter author needs and a user does not.
 * The contracts a tier and a bus implement, and the building blocks the
 * bundled adapters share (the bus wire codec, tick batching, bus membership,
 * the clock, option checking). Users import `@tiercache/core`.
 */
export * from './index.js'
