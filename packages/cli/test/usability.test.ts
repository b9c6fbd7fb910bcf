/**
 * What a new user runs into: a mistyped command, a folder given to -m, --out with a name the picture cannot
 * have or in a folder that does not exist (refused before the model loads), --out x.jpg, and the help texts.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const bin = join(root, "packages", "cli", "dist", "bin.js");
const model = "models/demo/pali-demo-q8_0.gguf";
const image = "models/demo/examples/002.png";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pali-cli-use-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function pali(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8", env: { ...process.env, PALI_CACHE: dir } });
}

describe("the CLI for a new user", () => {
  it("suggests the command meant, and documents PALI_LOG", () => {
    const r = pali(["lable", "x"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("Did you mean `pali label`?");
    expect(pali(["zzzzzz"]).stderr).not.toContain("Did you mean");
    expect(pali(["--help"]).stdout).toContain("PALI_LOG=");
    expect(pali(["run", "--help"]).stdout).toMatch(/--beams B\s+beam search with B beams/);
  });

  it("names the model file when -m is a folder, and never looks a folder up on the Hub", () => {
    for (const command of [["caption", "-i", image], ["info"]]) {
      const r = pali([command[0] as string, "-m", "models/demo", ...command.slice(1)]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain("models/demo is a folder: pass its model file, e.g. models/demo/pali-demo-q8_0.gguf");
    }
    const name = pali(["info", "-m", "pg2-3b-mix-224"]);
    expect(name.status).toBe(2);
    expect(name.stderr).toContain("pali pull pg2-3b-mix-224");
  });

  it("checks --out before loading and writes the format its name says", async () => {
    const gif = pali(["detect", "-m", model, "-i", image, "-l", "circle", "--out", join(dir, "x.gif")]);
    expect(gif.status).toBe(2);
    expect(gif.stderr).toContain(".png, .jpg or .webp");
    const missing = pali(["detect", "-m", model, "-i", image, "-l", "circle", "--out", join(dir, "no", "x.png")]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("does not exist; create it first");
    expect(missing.stderr).not.toMatch(/vips/i);
    const jpg = pali(["detect", "-m", model, "-i", image, "-l", "circle", "--out", join(dir, "x.jpg")]);
    expect(jpg.status, jpg.stderr).toBe(0);
    const bytes = await readFile(join(dir, "x.jpg"));
    expect([bytes[0], bytes[1]]).toEqual([0xff, 0xd8]);
    const png = pali(["detect", "-m", model, "-i", image, "-l", "circle", "--out", join(dir, "x.png")]);
    expect(png.status, png.stderr).toBe(0);
    expect((await readFile(join(dir, "x.png"))).subarray(1, 4).toString()).toBe("PNG");
  });
});
