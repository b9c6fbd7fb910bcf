/** `pali convert` interrupted by a signal: never a partial file under a final name; a SIGKILL's temp file is cleaned by the next run. */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { convertCheckpoint } from "@pali/convert";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const fixture = join(root, "models", "fixtures", "checkpoints", "pg1-224");
const cli = join(root, "packages", "cli", "dist", "bin.js");

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-convert-kill-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("pali convert interrupted mid-write", () => {
  for (const signal of ["SIGTERM", "SIGINT", "SIGKILL"] as const) {
    it(`leaves no file under a final name after ${signal}${signal === "SIGKILL" ? ", and the next run cleans up" : ""}`, async () => {
      const big = join(dir, "big");
      await rm(big, { recursive: true, force: true });
      await new Promise<void>((resolve, reject) => {
        const p = spawn(
          process.execPath,
          [join(root, "models", "synthetic", "make-checkpoint.mjs"), "--out", big, "--model", "small"],
          { stdio: "ignore" },
        );
        p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`make-checkpoint exited ${code}`))));
      });
      const target = join(dir, `killed-${signal}`);
      await mkdir(target);
      const child = spawn(process.execPath, [cli, "convert", big, "-o", target, "--type", "q4_k_m"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      await new Promise<void>((resolve) => {
        child.stderr.on("data", (d: Buffer) => {
          stderr += d.toString();
          if (/\b[1-9]0% /.test(stderr)) resolve();
        });
        child.on("exit", () => resolve());
      });
      child.kill(signal);
      const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
      expect(code, stderr).not.toBe(0);
      const left = await readdir(target);
      expect(left.filter((f) => f.endsWith(".gguf"))).toEqual([]);
      if (signal === "SIGKILL") {
        // The killed process left its temp file; the next conversion into the folder removes it.
        expect(left.some((f) => f.includes(".partial-"))).toBe(true);
        await convertCheckpoint({ input: fixture, outDir: target, name: "big", type: "q4_k_m" });
        expect((await readdir(target)).filter((f) => f.includes(".partial-"))).toEqual([]);
      } else {
        expect(left).toEqual([]);
        expect(stderr).toMatch(/ERR_ABORTED/);
      }
    });
  }
});
