#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need when it is missing (PostgreSQL, Redis and Chromium from
# Debian's packages; the tests start throwaway PostgreSQL and Redis servers and a headless browser themselves), then
# prints "tests: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
missing=()
if [ -z "${SEXTANT_TEST_POSTGRES:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium)
fi
if [ ! -x /usr/bin/redis-server ]; then
  missing+=(redis-server)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]} (apt-get)"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ONNX Runtime (model signatures) needs the en_US.UTF-8 locale.
if ! locale -a 2>/dev/null | grep -qi '^en_US\.utf-\?8$'; then
  if [ ! -f /usr/share/i18n/locales/en_US ]; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq locales >/dev/null
  fi
  echo "test.sh: generating the en_US.UTF-8 locale (localedef)"
  $SUDO localedef -i en_US -f UTF-8 en_US.UTF-8
fi

log=$(mktemp)
dotnet test Sextant.slnx --nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# Sum the per-assembly summaries ("Passed!  - Failed: 0, Passed: 12, Skipped: 0, Total: 12").
read -r passed failed skipped < <(grep -E '^(Passed|Failed)!' "$log" | sed -E 's/.*Failed: *([0-9]+), Passed: *([0-9]+), Skipped: *([0-9]+).*/\2 \1 \3/' |
  awk '{p+=$1; f+=$2; s+=$3} END {print p+0, f+0, s+0}')
rm -f "$log"
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "tests: no test ran"
  exit 1
fi
if [ "${CI:-}" = "true" ] && [ "$skipped" -gt 0 ]; then
  echo "test.sh: $skipped tests were skipped; in CI nothing may be skipped"
  status=1
fi
summary="tests: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -gt 0 ] && status=1
exit "$status"
