import { redisServerBinary } from './redis-server.js'

/** Fails the whole run at once, with the install command, when redis-server is missing. Never skips. */
export default function setup(): void {
  redisServerBinary()
}
