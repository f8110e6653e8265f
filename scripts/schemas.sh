#!/usr/bin/env bash
# The npm packages the schema tests check generated output against (tests/schemas/package.json,
# versions pinned by its package-lock.json): TypeScript, @grafana/schema, kubernetes-types and Ajv.
# Installed with `npm ci` into target/schemas/ (never into the source tree), and only again when
# the lock file changed. Prints the node_modules directory. Safe to run concurrently (flock).
set -euo pipefail
cd "$(dirname "$0")/.."
src=tests/schemas
dir=target/schemas
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
# .installed is the lock of the last install that completed.
if ! cmp -s "$src/package-lock.json" "$dir/.installed"; then
  command -v npm >/dev/null || { echo "npm not found: install Node.js 20 and npm" >&2; exit 1; }
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$src/package-lock.json" "$dir/.installed"
fi
echo "$PWD/$dir/node_modules"
