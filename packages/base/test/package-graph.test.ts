/**
 * The package graph a user installs piecemeal: the plain-TypeScript packages never reach native code
 * through their dependencies, and every publishable package carries the shared metadata at one version.
 * (scripts/install-test.mjs checks the same with real npm installs of the packed tarballs.)
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "..", "..", "..");
interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}
const manifests = new Map<string, Manifest>();
for (const dir of [...readdirSync(join(repo, "packages")).map((d) => join("packages", d)), "native"]) {
  try {
    const m = JSON.parse(readFileSync(join(repo, dir, "package.json"), "utf8")) as Manifest;
    manifests.set(m.name, m);
  } catch {
    // not a package folder
  }
}

/** Everything installing `name` installs: the dependencies, optional and peer ones too, transitively. */
function closure(name: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  const m = manifests.get(name);
  for (const dep of Object.keys({ ...m?.dependencies, ...m?.optionalDependencies, ...m?.peerDependencies })) closure(dep, seen);
  return seen;
}

const native = /^@pali\/(core|native)|^node-llama-cpp$|^@node-llama-cpp\/|^sharp$|^cmake-js$/;

describe("package graph", () => {
  it("tasks, tokenizer, gguf and base reach no native package", () => {
    for (const name of ["@pali/tasks", "@pali/tokenizer", "@pali/gguf", "@pali/base"]) {
      const reached = [...closure(name)];
      expect(
        reached.filter((d) => native.test(d)),
        `${name} reaches ${reached.join(", ")}`,
      ).toEqual([]);
    }
    expect([...closure("@pali/tasks")].sort()).toEqual(["@pali/base", "@pali/tasks"]);
    expect(manifests.get("@pali/base")?.dependencies ?? {}).toEqual({});
  });

  it("the SDK and the CLI do reach the addon", () => {
    expect(closure("@pali/sdk").has("@pali/native")).toBe(true);
    expect(closure("@pali/cli").has("@pali/native")).toBe(true);
  });

  it("every publishable package has the shared metadata, a README and a LICENSE, at the workspace version", () => {
    const r = spawnSync(process.execPath, [join(repo, "scripts", "packages.mjs"), "--check"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});
