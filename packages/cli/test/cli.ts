/** What the CLI tests share: the built `pali` command, run as a user runs it, and the committed fixtures. */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const bin = join(root, "packages", "cli", "dist", "bin.js");
export const fixtures = join(root, "models", "fixtures");

/** `pali ARGS…` in its own process; status, stdout and stderr. */
export function pali(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
}

/** `pali convert` of a fixture checkpoint at f32 (decoder and image encoder) into `out`; the model's path. */
export function convertF32(checkpoint: string, out: string): string {
  const r = pali(
    "convert",
    join(fixtures, "checkpoints", checkpoint),
    "-o",
    out,
    "--type",
    "f32",
    "--mmproj-type",
    "f32",
    "--json",
  );
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout).model as string;
}
