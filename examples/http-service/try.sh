#!/usr/bin/env bash
# The walkthrough of README.md against two running instances (A on 3001, B on
# 3002; set A and B to other base URLs if you started them elsewhere). Prints
# each curl command and the part of the answer that matters. Can be run again:
# each run raises product 1's price by 1, so its value (and ETag) changes.
set -euo pipefail
A=${A:-http://127.0.0.1:3001}
B=${B:-http://127.0.0.1:3002}
PRODUCT=/products/1

# The command as you would type it, then the status line, the headers this
# example is about, and the body.
show() {
  local line='$ curl -i' arg
  for arg in "$@"; do
    case $arg in
    *[\ \"{]*) line+=" '$arg'" ;;
    *) line+=" $arg" ;;
    esac
  done
  echo "$line"
  local answer
  answer=$(curl -sS -i "$@" | tr -d '\r' | grep -viE '^(date|connection|keep-alive|content-length|content-type):')
  printf '%s\n\n' "$answer" # $(...) dropped the trailing blank lines of a 304
}
header() { # header <name> <curl args...>: one response header's value
  local name=$1
  shift
  curl -sS -D - -o /dev/null "$@" | tr -d '\r' | grep -i "^$name:" | cut -d' ' -f2-
}
step() { echo "== $*"; }

for url in "$A" "$B"; do
  curl -sS -o /dev/null "$url/health" || {
    echo "no instance answers at $url: start both first (see README.md)" >&2
    exit 1
  }
done

step "1. GET on A (the first time a miss: loaded from the database in 20 ms, stored in A's L1 and in Redis)"
show "$A$PRODUCT"
etag=$(header etag "$A$PRODUCT")

step "2. The same GET with If-None-Match: the client's copy is current, 304 without a body"
show -H "If-None-Match: $etag" "$A$PRODUCT"

step "3. GET on B: read from Redis (no database query on B), same ETag; and B answers A's ETag with a 304"
show "$B$PRODUCT"
show -H "If-None-Match: $etag" "$B$PRODUCT"

step "4. The category listing on A (cache.getOrSet, tagged category:kitchen)"
show "$A/categories/kitchen"

price=$(curl -sS "$A$PRODUCT" | sed -n 's/.*"price":\([0-9.]*\).*/\1/p')
new_price=$(awk "BEGIN { print $price + 1 }")
step "5. PUT on B: B writes the database, then invalidates product:1 and category:kitchen on every instance"
show -X PUT -H 'content-type: application/json' -d "{\"price\": $new_price}" "$B$PRODUCT"

step "6. GET on A with the old ETag: 200 with the new price and a new ETag (A dropped its L1 copy when B's invalidation arrived)"
# The invalidation reaches A over Redis pub/sub a moment after B's PUT has
# answered: ask again (at most 50 times) while A still answers 304.
for attempt in $(seq 1 50); do
  status=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$A$PRODUCT")
  [ "$status" != 304 ] && break
  echo "(A still answered 304 at attempt $attempt: the invalidation was on its way)"
  sleep 0.1
done
show -H "If-None-Match: $etag" "$A$PRODUCT"
new_etag=$(header etag "$A$PRODUCT")

step "7. B serves the same new ETag; the listing on A shows the new price"
show -H "If-None-Match: $new_etag" "$B$PRODUCT"
show "$A/categories/kitchen"

step "8. Database queries per instance"
curl -sS "$A/health"
echo
curl -sS "$B/health"
echo
