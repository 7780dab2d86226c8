#!/usr/bin/env bash
# Packs every public package, installs the tarballs into a fresh project outside the repository (third-party
# dependencies from the registry), typechecks a consumer with skipLibCheck false under module nodenext, runs it as
# ESM and as CommonJS, runs a plan on pe-cluster's memory hosts (the ./testing subpath), checks that one copy of
# pe-host is installed, and runs the pe-cluster bin.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d /tmp/pe-consumer-XXXXXX)"
trap 'rm -rf "$work"' EXIT
step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step 'build and pack the public packages'
cd "$repo"
npx tsc -b packages/pe-cluster
mapfile -t dirs < <(node -e '
  const fs = require("fs");
  for (const d of fs.readdirSync("packages").sort()) {
    const f = `packages/${d}/package.json`;
    if (fs.existsSync(f) && !JSON.parse(fs.readFileSync(f, "utf8")).private) console.log(`packages/${d}`);
  }')
mkdir -p "$work/tarballs"
npm pack --silent --ignore-scripts --pack-destination "$work/tarballs" "${dirs[@]/#/-w=}" >/dev/null
ls -l "$work/tarballs"

step 'install the tarballs into a fresh project'
mkdir -p "$work/consumer"
cp "$here/consumer/index.mts" "$here/consumer/index.cts" "$here/consumer/testing.mts" "$here/consumer/tsconfig.json" "$work/consumer/"
cd "$work/consumer"
node -e '
  const fs = require("fs");
  const deps = {};
  for (const t of fs.readdirSync("../tarballs")) deps[`@pe-stack/${t.replace(/^pe-stack-(.+)-\d+\.\d+\.\d+.*\.tgz$/, "$1")}`] = `file:../tarballs/${t}`;
  const versions = require(process.argv[1]);
  const dev = { typescript: versions.devDependencies.typescript, "@types/node": versions.devDependencies["@types/node"] };
  fs.writeFileSync("package.json", JSON.stringify({ name: "consumer", private: true, dependencies: deps, devDependencies: dev, overrides: deps }, null, 2));
' "$repo/package.json"
npm install --no-audit --no-fund --loglevel=error

step 'one copy of each @pe-stack package'
copies="$(find node_modules -path '*/@pe-stack/pe-host/package.json' | wc -l)"
[ "$copies" = 1 ] || { echo "expected one pe-host, found $copies"; exit 1; }

step 'typecheck and compile (module nodenext, skipLibCheck false)'
npx tsc -p tsconfig.json

step 'run as ESM and as CommonJS'
node dist/index.mjs
node dist/index.cjs

step 'the ./testing subpath: a plan on memory hosts'
node dist/testing.mjs

step 'the pe-cluster bin'
version="$(npx pe-cluster --version)"
expected="$(node -p 'require("@pe-stack/pe-cluster/package.json").version')"
[ "$version" = "$expected" ] || { echo "pe-cluster --version: $version, expected $expected"; exit 1; }
help="$(npx pe-cluster --help)"
grep -q 'Exit codes:' <<<"$help" || { echo "pe-cluster --help lacks the exit codes"; exit 1; }
join_help="$(npx pe-cluster join --help)"
grep -q 'Global Options:' <<<"$join_help" || { echo "pe-cluster join --help lacks the global options"; exit 1; }
echo "pe-cluster $version"
step 'done'
