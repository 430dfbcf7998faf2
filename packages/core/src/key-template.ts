import { InvalidArgumentError } from './errors.js'

/** The `{name}` placeholders of a template, as a union of their names. */
export type KeyParamNames<T extends string> = T extends `${string}{${infer Name}}${infer Rest}` ? Name | KeyParamNames<Rest> : never

/** The values a template needs: exactly its placeholders (a missing or extra one is a type error). */
export type KeyParams<T extends string> = { [Name in KeyParamNames<T>]: string | number | bigint | boolean }

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/** A parsed template: literal parts around named placeholders. */
export interface ParsedTemplate {
  readonly source: string
  readonly literals: readonly string[]
  readonly names: readonly string[]
}

export function parseTemplate(source: string, what: string, cache: string): ParsedTemplate {
  if (typeof source !== 'string' || source.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty string`, { cache })
  }
  const literals: string[] = []
  const names: string[] = []
  let last = 0
  for (const match of source.matchAll(PLACEHOLDER)) {
    literals.push(source.slice(last, match.index))
    names.push(match[1]!)
    last = match.index! + match[0].length
  }
  literals.push(source.slice(last))
  if (new Set(names).size !== names.length) throw new InvalidArgumentError(`${what} "${source}" repeats a placeholder`, { cache })
  // Values are escaped so they never contain ':'; a ':' between two
  // placeholders therefore marks where one value ends, and two different
  // parameter sets can never build the same key.
  for (let i = 1; i < literals.length - 1; i++) {
    if (!literals[i]!.includes(':')) {
      throw new InvalidArgumentError(`${what} "${source}": placeholders must be separated by ':' so keys stay unambiguous`, {
        cache,
      })
    }
  }
  if (/[{}]/.test(literals.join(''))) throw new InvalidArgumentError(`${what} "${source}" has an unmatched brace`, { cache })
  return { source, literals, names }
}

/** Escapes a parameter value: '%' and ':' (the separator) and control characters become %XX. */
function escapeValue(value: unknown): string {
  return String(value).replace(/[%:\u0000-\u001f]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)
}

/** Fills a template; throws InvalidArgumentError naming the missing or extra parameter. */
export function fillTemplate(template: ParsedTemplate, params: unknown, cache: string): string {
  if (params === null || typeof params !== 'object') {
    throw new InvalidArgumentError(`key "${template.source}" needs an object of parameters`, { cache })
  }
  const given = params as Record<string, unknown>
  for (const name of Object.keys(given)) {
    if (!template.names.includes(name)) throw new InvalidArgumentError(`key "${template.source}" has no parameter "${name}"`, { cache })
  }
  let out = template.literals[0]!
  template.names.forEach((name, i) => {
    const value = given[name]
    const type = typeof value
    if (value === undefined || value === null || value === '' || (type !== 'string' && type !== 'number' && type !== 'bigint' && type !== 'boolean')) {
      throw new InvalidArgumentError(`key "${template.source}": parameter "${name}" must be a non-empty string, number, bigint or boolean`, { cache })
    }
    out += escapeValue(value) + template.literals[i + 1]!
  })
  return out
}
