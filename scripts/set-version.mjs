#!/usr/bin/env node
// Sets one version everywhere, in lock-step: the root package.json, every packages/*/package.json (and their
// workspace:* dependencies stay as they are: pnpm pack writes the version), native/package.json with its
// optionalDependencies on the per-platform packages, and native/npm/<variant>/package.json (regenerated).
//
//   node scripts/set-version.mjs 0.2.0
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const version = process.argv[2];
if (!version || !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
  console.error("usage: node scripts/set-version.mjs X.Y.Z[-pre]");
  process.exit(1);
}

function edit(path, change) {
  const pkg = JSON.parse(readFileSync(path, "utf8"));
  change(pkg);
  writeFileSync(path, `${JSON.stringify(pkg, null, 2)}\n`);
}

const files = [join(repo, "package.json"), join(repo, "native", "package.json")];
for (const dir of readdirSync(join(repo, "packages"))) files.push(join(repo, "packages", dir, "package.json"));
for (const path of files) {
  edit(path, (pkg) => {
    pkg.version = version;
    for (const name of Object.keys(pkg.optionalDependencies ?? {})) {
      if (name.startsWith("@pali/native-")) pkg.optionalDependencies[name] = version;
    }
  });
}
execFileSync(process.execPath, [join(repo, "native", "scripts", "variants.mjs"), "--write"], { stdio: "inherit" });
console.log(`set ${version} in ${files.length} package.json files and native/npm/*`);
