// Markdown output for the bench tables.
export function markdownTable(columns, rows) {
  const line = (cells) => `| ${cells.map((c) => String(c)).join(' | ')} |`
  return [line(columns), line(columns.map(() => '---')), ...rows.map(line)].join('\n')
}

/** A scenario's main table, then any further ones (`tables`: [{ caption, columns, rows }]), each after its caption. */
export function scenarioTables(result) {
  const more = (result.tables ?? []).map((t) => `${t.caption}\n\n${markdownTable(t.columns, t.rows)}`)
  return [markdownTable(result.columns, result.rows), ...more].join('\n\n')
}
