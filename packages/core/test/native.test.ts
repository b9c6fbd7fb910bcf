import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadNative, setLogger, systemInfo } from "../src/index.js";

const coreDist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "index.js");

/** Loads the addon in a fresh process with PALI_NATIVE_PATH set and reports what was thrown. */
function loadWith(nativePath: string) {
  const script = `import(${JSON.stringify(coreDist)}).then((core) => { try { core.systemInfo(); console.log(JSON.stringify({ ok: true })); } catch (e) { console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message })); } });`;
  const result = spawnSync(process.execPath, ["-e", script], {
    env: { ...process.env, PALI_NATIVE_PATH: nativePath },
    encoding: "utf8",
  });
  return JSON.parse(result.stdout.trim());
}

describe("native addon", () => {
  it("reports versions, the CPU backend, its features and default threads", () => {
    const info = systemInfo();
    expect(info.pali).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.llamaCpp).toMatch(/^v\d+\.\d+\.\d+ \([0-9a-f]{10}\)$/);
    expect(info.ggml).toMatch(/^\d+\.\d+\.\d+/);
    const cpu = info.devices.find((d) => d.type === "cpu");
    expect(cpu?.backend).toBe("CPU");
    expect(cpu?.memoryTotal).toBeGreaterThan(0);
    // The CPU variant that was loaded fits this processor: on x86-64 it uses at least SSE3.
    if (process.arch === "x64") expect(info.cpuFeatures.SSE3).toBe("1");
    expect(info.defaultThreads).toBeGreaterThanOrEqual(1);
  });

  it("measures the matrix-product rate per weight type and the read bandwidth, and refuses bad arguments", async () => {
    const native = loadNative();
    for (const type of ["f32", "bf16", "q8_0", "q4_K"])
      expect(await native.benchMatmul(256, 256, 256, 1, type, "ggml", 1)).toBeGreaterThan(0);
    await expect(native.benchMatmul(256, 256, 256, 1, "q9_z", "ggml", 1)).rejects.toThrow();
    await expect(native.benchMatmul(100, 100, 100, 1, "q4_K", "ggml", 1)).rejects.toThrow(); // 100 is not a multiple of q4_K's 256
    expect(await native.benchReadBandwidth(64, 1, 1)).toBeGreaterThan(0.1);
    await expect(native.benchReadBandwidth(1, 1, 1)).rejects.toThrow();
  });

  it("accepts and removes a log callback", () => {
    setLogger(() => {}, "debug");
    setLogger(null);
    expect(() => setLogger(() => {}, "loud" as never)).toThrow(/Expected one of debug, info, warn, error for minLevel/);
  });

  it("a missing binary gives one error that says what to run", () => {
    const result = loadWith(join(tmpdir(), "no-such-dir", "pali.node"));
    expect(result.code).toBe("ERR_NATIVE_BINARY");
    expect(result.message).toMatch(/native addon is missing/);
    expect(result.message).toMatch(/corepack pnpm build/);
  });

  it("a binary for another platform (or a damaged one) gives one error that says what to run", () => {
    const dir = mkdtempSync(join(tmpdir(), "pali-native-"));
    const fake = join(dir, "pali.node");
    writeFileSync(fake, Buffer.concat([Buffer.from("MZ\x90\x00"), Buffer.alloc(1024)])); // a Windows PE header
    const result = loadWith(fake);
    expect(result.code).toBe("ERR_NATIVE_BINARY");
    expect(result.message).toMatch(/built for another platform or is damaged/);
    expect(result.message).toMatch(/pnpm --filter @pali\/native build/);
  });
});
