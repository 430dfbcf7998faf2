// Markdown output for the bench tables.
export function markdownTable(columns, rows) {
  const line = (cells) => `| ${cells.map((c) => String(c)).join(' | ')} |`
  return [line(columns), line(columns.map(() => '---')), ...rows.map(line)].join('\n')
}
