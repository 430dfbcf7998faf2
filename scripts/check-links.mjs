#!/usr/bin/env node
// Checks every relative link of the README and the guides, without network:
// the file (or folder) a link names must exist, and a `#anchor` must be a
// heading of the Markdown file it points into, slugged as GitHub does. A
// guide moved or a heading renamed then fails `npm test` instead of leaving
// a reader on a dead link. External links (http:, https:, mailto:) are not
// fetched.
//
//   node scripts/check-links.mjs                 README.md and docs/*.md
//   node scripts/check-links.mjs some/file.md    these files instead
//
// Exit status 1, with one line per broken link, if any link does not resolve.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** The files checked by default: the README and every guide. */
function defaultFiles() {
  const docs = join(root, 'docs')
  const guides = existsSync(docs)
    ? readdirSync(docs)
        .filter((name) => name.endsWith('.md'))
        .map((name) => join(docs, name))
    : []
  return [join(root, 'README.md'), ...guides]
}

/** The text outside fenced code blocks, line by line (a fence's lines become empty, so line numbers hold). */
function proseLines(text) {
  let fence
  return text.split('\n').map((line) => {
    const open = /^\s*(`{3,}|~{3,})/.exec(line)
    if (fence === undefined && open) {
      fence = open[1]
      return ''
    }
    if (fence !== undefined) {
      if (line.trim().startsWith(fence)) fence = undefined
      return ''
    }
    return line
  })
}

/** GitHub's heading slug: the rendered text, lower-cased, punctuation dropped, spaces to hyphens. */
export function slug(heading) {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/[`*]/g, '') // code spans and emphasis marks render as their text
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-')
}

const anchorCache = new Map()
/** Every anchor a Markdown file defines: its headings' slugs (repeats numbered -1, -2, … as GitHub does) and explicit ids. */
function anchorsOf(file) {
  let anchors = anchorCache.get(file)
  if (anchors !== undefined) return anchors
  anchors = new Set()
  const seen = new Map()
  for (const line of proseLines(readFileSync(file, 'utf8'))) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (heading) {
      const base = slug(heading[1])
      const count = seen.get(base) ?? 0
      seen.set(base, count + 1)
      anchors.add(count === 0 ? base : `${base}-${count}`)
    }
    for (const id of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(id[1])
  }
  anchorCache.set(file, anchors)
  return anchors
}

/** The links of one line: `[text](target)` and `![alt](target)`, outside inline code. */
function linksOf(line) {
  const withoutCode = line.replace(/`[^`]*`/g, (span) => ' '.repeat(span.length))
  return [...withoutCode.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1])
}

/** What is wrong with one link of `file`, or undefined when it resolves. */
function problemOf(file, target) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined // http:, https:, mailto:
  const hash = target.indexOf('#')
  const path = decodeURIComponent(hash === -1 ? target : target.slice(0, hash))
  const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1))
  const into = path === '' ? file : resolve(dirname(file), path)
  if (!existsSync(into)) return `${path} does not exist`
  if (anchor === undefined || anchor === '') return undefined
  if (statSync(into).isDirectory() || !into.endsWith('.md')) return `#${anchor}: only a Markdown file's anchors can be checked`
  if (!anchorsOf(into).has(anchor)) return `#${anchor} is not a heading of ${relative(root, into)}`
  return undefined
}

const files = process.argv.length > 2 ? process.argv.slice(2).map((f) => resolve(f)) : defaultFiles()
let links = 0
const broken = []
for (const file of files) {
  proseLines(readFileSync(file, 'utf8')).forEach((line, index) => {
    for (const target of linksOf(line)) {
      links++
      const problem = problemOf(file, target)
      if (problem !== undefined) broken.push(`${relative(root, file)}:${index + 1}: ${target}: ${problem}`)
    }
  })
}
if (broken.length > 0) {
  console.error(`${broken.length} broken link(s) in ${files.length} file(s):\n${broken.join('\n')}`)
  process.exit(1)
}
console.log(`links: ${links} in ${files.length} file(s), all resolve`)
