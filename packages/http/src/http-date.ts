/**
 * HTTP dates (RFC 9110 §5.6.7). Written as IMF-fixdate, the one form a
 * sender may generate; read in all three forms a recipient must accept.
 * Not `Date.parse`: it reads the asctime form (no zone) as local time and
 * accepts many strings that are not HTTP dates at all.
 */
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC850_DATE = /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/
// Sun Nov  6 08:49:37 1994
const ASCTIME_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/

/** `ms` (since the epoch) as an IMF-fixdate, whole seconds (what `toUTCString` writes). */
export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString()
}

/** An HTTP date in any of its three forms, as ms since the epoch; `undefined` for anything else (the header is then ignored). */
export function parseHttpDate(text: string): number | undefined {
  const value = text.trim()
  let match = IMF_FIXDATE.exec(value)
  if (match !== null) return utc(match[3]!, match[2]!, match[1]!, match[4]!, match[5]!, match[6]!)
  match = RFC850_DATE.exec(value)
  if (match !== null) return utc(fullYear(Number(match[3])), match[2]!, match[1]!, match[4]!, match[5]!, match[6]!)
  match = ASCTIME_DATE.exec(value)
  if (match !== null) return utc(match[6]!, match[1]!, match[2]!.trim(), match[3]!, match[4]!, match[5]!)
  return undefined
}

/**
 * A two-digit RFC 850 year: RFC 9110 says one that would be more than 50
 * years in the future is the most recent past year with those digits.
 */
function fullYear(twoDigits: number): string {
  const thisYear = new Date().getUTCFullYear()
  let year = thisYear - (thisYear % 100) + twoDigits
  if (year > thisYear + 50) year -= 100
  return String(year)
}

function utc(year: string, monthName: string, day: string, hour: string, minute: string, second: string): number | undefined {
  const month = MONTHS.indexOf(monthName)
  const d = Number(day)
  const h = Number(hour)
  const m = Number(minute)
  const s = Number(second)
  // 60 is a leap second: RFC 9110 allows it, Date.UTC rolls it into the next minute.
  if (month < 0 || d < 1 || d > 31 || h > 23 || m > 59 || s > 60) return undefined
  const ms = Date.UTC(Number(year), month, d, h, m, s)
  // Date.UTC rolls 31 Feb into March: such a date is not one.
  return new Date(Date.UTC(Number(year), month, d)).getUTCDate() === d ? ms : undefined
}
