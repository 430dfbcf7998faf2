#!/usr/bin/env bash
# Proves that `npm test` installs redis-server on a machine that lacks it, without touching this one:
# run as root with `unshare -m --propagation private bash scripts/dev/prove-redis-install.sh`. Inside the
# private mount namespace it hides the redis-server/redis-tools binaries and their dpkg records, then runs
# CI from a fresh clone of this checkout, which must install Debian's redis-server and pass.
set -eu
work=$(mktemp -d /tmp/freshns.XXXX)
cp -a /usr/bin "$work/bin"
rm -f "$work"/bin/redis-*
cp -a /var/lib/dpkg "$work/dpkg"
python3 - "$work/dpkg/status" <<'PY'
import sys
p = sys.argv[1]
blocks = open(p).read().split('\n\n')
keep = [b for b in blocks if not any(b.startswith(f'Package: {n}\n') for n in ('redis-server', 'redis-tools'))]
open(p, 'w').write('\n\n'.join(keep))
PY
mount --bind "$work/bin" /usr/bin
mount --bind "$work/dpkg" /var/lib/dpkg
echo "before: $(command -v redis-server || echo 'redis-server absent')"
d=$(mktemp -d) && git clone -q "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" "$d" && cd "$d" && bash .ci/run
echo "after: $(command -v redis-server)"
