import { InvalidOptionError, type ErrorContext } from './errors.js'

/**
 * Rejects anything but an options object made of known names: a misspelt
 * option (`tiemout`) silently ignored is a production surprise, so it fails
 * at construction, naming the option and what would have been accepted.
 */
export function assertKnownOptions(
  options: unknown,
  known: ReadonlySet<string>,
  owner: string,
  context: ErrorContext = {},
): asserts options is Record<string, unknown> {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError(`${owner} expects an options object`, context)
  }
  for (const option of Object.keys(options)) {
    if (!known.has(option)) {
      throw new InvalidOptionError(`${owner}: unknown option "${option}" (known: ${[...known].join(', ')})`, context)
    }
  }
}
