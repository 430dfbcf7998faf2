/**
 * Why a connection to Redis failed, said two ways: a short cause for
 * `ConnectionChange.cause` and log fields (`refused`, `auth`, …, stable for
 * code to match on), and a sentence for people, with the error's code and
 * what to do about it. A wrong URL must not reach a user as ioredis's
 * "Reached the max retries per request limit".
 */
import { errorMessageOf } from '@tiercache/core/adapter'

/**
 * Why a connection failed, as `ConnectionChange.cause` names it: `refused`,
 * `auth`, `tls`, `timeout`, `closed`, or the error's own message.
 */
export function causeOf(error: unknown): string {
  const inner = innermost(error)
  const code = codeOf(inner)
  const message = errorMessageOf(inner)
  if (code === 'ECONNREFUSED') return 'refused'
  if (/^(NOAUTH|WRONGPASS)\b/.test(message) || /invalid password|invalid username-password/i.test(message)) return 'auth'
  if (typeof code === 'string' && /^(ERR_TLS|ERR_SSL|EPROTO$)|CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code)) return 'tls'
  if (/\b(SSL|TLS)\b|certificate|wrong version number/i.test(message)) return 'tls'
  if (code === 'ETIMEDOUT' || /\bETIMEDOUT\b/.test(message)) return 'timeout'
  if (code === 'ECONNRESET' || code === 'EPIPE' || message === 'Connection is closed.') return 'closed'
  return message
}

/** SELECT of the configured database failed: ioredis reports it, then carries on in database 0. */
export function isWrongDatabase(error: unknown): boolean {
  return /^ERR (DB index is out of range|invalid DB index)|SELECT is not allowed in cluster mode/.test(errorMessageOf(error))
}

/**
 * The failure as a sentence: what happened, the error's code, and what to
 * do. `db` is the database the connection was configured with.
 */
export function explainConnectionError(error: unknown, db?: number): string {
  const inner = innermost(error)
  const code = codeOf(inner)
  const message = errorMessageOf(inner)
  if (isWrongDatabase(inner)) {
    return /cluster mode/.test(message)
      ? `database ${db ?? '?'} cannot be selected on Redis Cluster (${message}): remove db from the URL or options (Cluster has database 0 only)`
      : `database ${db ?? '?'} does not exist on this server (${message}): use a db below the server's "databases" setting (16 unless configured), in the URL path or options.db`
  }
  if (/^NOAUTH\b/.test(message)) {
    return 'auth failed: NOAUTH (the server requires a password and none was given): put it in the URL (redis://:password@host:port, or redis://user:password@… for an ACL user) or in options.password'
  }
  if (/^WRONGPASS\b/.test(message) || /invalid username-password/i.test(message)) {
    return `auth failed: ${message.replace(/\.$/, '')}: check the username and password in the URL or options, and that the ACL user exists and is on`
  }
  if (/invalid password/i.test(message)) return `auth failed: ${message.replace(/\.$/, '')}: check the password in the URL or options.password`
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (ECONNREFUSED): nothing is listening there; check the host and port in the URL, and that redis-server is running'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host not found (${message}): the host name does not resolve; check it in the URL, and DNS from this machine`
    case 'ETIMEDOUT':
      return 'connect timed out (ETIMEDOUT): nothing answered within connectTimeout; check the host and port, firewalls and security groups, or raise options.connectTimeout'
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `host unreachable (${code}): no route to it from this machine; check the host in the URL and the network`
    case 'ECONNRESET':
    case 'EPIPE':
      return `connection closed (${code}): the server or the network dropped it; reconnecting`
  }
  if (causeOf(inner) === 'tls') {
    return `TLS failed: ${message}${code === undefined ? '' : ` (${code})`}: use rediss:// for a TLS port and redis:// otherwise; for a private CA, pass options.tls.ca`
  }
  if (message === 'Connection is closed.') return 'connection closed'
  return message
}

/**
 * The command never reached Redis because the connection failed: it waited
 * in ioredis's offline queue through a failed reconnect
 * (MaxRetriesPerRequestError), or was refused unsent.
 */
export function isUnsentBecauseDisconnected(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name
  const message = errorMessageOf(error)
  return name === 'MaxRetriesPerRequestError' || /^Reached the max retries per request limit|^Stream isn't writeable/.test(message)
}

/** A Cluster that reached no node reports the last node's error inside its own. */
function innermost(error: unknown): unknown {
  return (error as { lastNodeError?: unknown } | null)?.lastNodeError ?? error
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}
