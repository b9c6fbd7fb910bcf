// pali's matrix product for the vision tower (native/src/model/cpu_gemm.cpp) against a float64 reference product
// of the weights as stored (decoded here, independently of ggml) and of the activations as the kernel reads them
// (f32, or rounded to bf16 by the avx512-bf16 kernel); ggml's mul_mat beside it against the same reference of what
// it reads (x rounded to f16 or bf16, or quantized to q8_0, for those weights).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadNative } from "../src/index.js";

const native = loadNative();
const supported = native.gemmKernel("f32", 64) !== "";

/** IEEE half → number */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const word = new DataView(new ArrayBuffer(4));
function bf16ToFloat(b: number): number {
  word.setUint32(0, b << 16);
  return word.getFloat32(0);
}
/** round to nearest even, as ggml's and the CPU's conversions do (finite values only here) */
function roundBf16(v: number): number {
  word.setFloat32(0, v);
  const u = word.getUint32(0);
  return bf16ToFloat(((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff);
}

/** round to the nearest f16 (nearest even on ties), as F16C and ggml do */
function roundHalf(v: number): number {
  const a = Math.abs(v);
  if (a === 0) return v;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp; // exact: a is a float32 and ulp a power of two
  let r = Math.floor(q);
  if (q - r > 0.5 || (q - r === 0.5 && r % 2 === 1)) r++;
  return Math.sign(v) * r * ulp;
}

/** x as ggml's q8_0 product reads it: per 32 values, d = max |x| / 127 stored as f16, and round(x / d) */
function quantizeQ8(x: Float32Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let i = b; i < b + 32; i++) amax = Math.max(amax, Math.abs(x[i] ?? 0));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    for (let i = b; i < b + 32; i++) out[i] = roundHalf(d) * Math.round(Math.fround((x[i] ?? 0) * id));
  }
  return out;
}

/** The activations as ggml's mul_mat reads them for weights of this type */
function ggmlActivations(type: string, x: Float32Array): Float64Array {
  if (type === "f16") return Float64Array.from(x, roundHalf);
  if (type === "bf16") return Float64Array.from(x, roundBf16);
  if (type === "q8_0") return quantizeQ8(x);
  return Float64Array.from(x);
}

/** The n×k weights as stored in `bytes` of a ggml type, as float64 */
function decode(type: string, bytes: Uint8Array, n: number, k: number): Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const w = new Float64Array(n * k);
  for (let i = 0; i < n * k; i++) {
    if (type === "f32") w[i] = view.getFloat32(4 * i, true);
    else if (type === "f16") w[i] = halfToFloat(view.getUint16(2 * i, true));
    else if (type === "bf16") w[i] = bf16ToFloat(view.getUint16(2 * i, true));
    else {
      const block = 34 * Math.floor(i / 32); // q8_0: an fp16 scale and 32 int8 per block; rows are whole blocks
      w[i] = halfToFloat(view.getUint16(block, true)) * view.getInt8(block + 2 + (i % 32));
    }
  }
  return w;
}

function relL2(got: Float32Array, want: Float64Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += ((got[i] ?? 0) - (want[i] ?? 0)) ** 2;
    den += (want[i] ?? 0) ** 2;
  }
  return Math.sqrt(num / den);
}

async function weights(type: string, n: number, k: number): Promise<Uint8Array> {
  const src = new Float32Array(n * k).map((_, i) => Math.sin(i * 1.618) * 0.5 + 0.01 * Math.cos(i * 0.37));
  const dst = new Uint8Array(native.rowSize(type, k) * n);
  await native.convertRows(type, src, n, k, dst, 1);
  return dst;
}

function reference(w: Float64Array, x: Float64Array, m: number, n: number, k: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < n; c++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += (x[r * k + j] ?? 0) * (w[c * k + j] ?? 0);
      out[r * n + c] = s;
    }
  }
  return out;
}

/** What this CPU should get, from the kernel's own flags in /proc/cpuinfo (Linux) */
function expectedKernel(type: string, k: number): string | undefined {
  let flags: string[];
  try {
    flags = (readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1] ?? "").trim().split(/\s+/);
  } catch {
    return undefined;
  }
  if (!["avx2", "fma", "f16c"].every((f) => flags.includes(f))) return "";
  const avx512 = ["avx512f", "avx512bw"].every((f) => flags.includes(f)) && process.env.PALI_GEMM_ISA !== "avx2";
  if (type === "bf16" && k % 2 === 0 && avx512 && flags.includes("avx512_bf16")) return "avx512-bf16";
  return avx512 ? "avx512-f32" : "avx2-f32";
}

// m: token-row tails of both kernels' tiles (6 and 12 rows); k: tails of their K blocks (256 and 512 values),
// odd K (the bf16 kernel reads pairs and leaves it to the f32 one), and pair tails of its 16 × 16 transposes.
const shapes = [
  { m: 1, n: 16, k: 32 },
  { m: 5, n: 48, k: 288 },
  { m: 13, n: 32, k: 600 },
  { m: 37, n: 16, k: 1056 },
  { m: 7, n: 32, k: 33 },
];

describe("pali's vision-tower product", () => {
  it("names its kernel for this CPU", () => {
    for (const [type, k] of [
      ["f32", 64],
      ["f16", 64],
      ["q8_0", 64],
      ["bf16", 64],
      ["bf16", 33],
    ] as const) {
      const want = expectedKernel(type, k);
      if (want !== undefined && process.arch === "x64") expect(native.gemmKernel(type, k)).toBe(want);
    }
    expect(native.gemmKernel("q4_K", 256)).toBe("");
  });

  for (const type of ["f32", "f16", "bf16", "q8_0"]) {
    it.skipIf(!supported)(`matches the reference product for ${type} weights, and ggml's within its rounding`, async () => {
      for (const { m, n, k } of shapes) {
        if (type === "q8_0" && k % 32 !== 0) continue;
        const w = await weights(type, n, k);
        const x = new Float32Array(m * k).map((_, i) => Math.cos(i * 0.71) + 0.25);
        const kernel = native.gemmKernel(type, k);
        const xs = Float64Array.from(x, (v) => (kernel === "avx512-bf16" ? roundBf16(v) : v));
        const wd = decode(type, w, n, k);
        const ours = new Float32Array(m * n);
        await native.matmul(type, "pali", m, n, k, w, x, ours, 2);
        expect(relL2(ours, reference(wd, xs, m, n, k)), `${type} ${m}×${n}×${k} (${kernel})`).toBeLessThan(2e-6);
        // ggml rounds x to f16 / bf16 or quantizes it to q8_0 for those weights: the same reference of what it reads
        const theirs = new Float32Array(m * n);
        await native.matmul(type, "ggml", m, n, k, w, x, theirs, 2);
        const read = reference(wd, ggmlActivations(type, x), m, n, k);
        expect(relL2(theirs, read), `ggml ${type} ${m}×${n}×${k}`).toBeLessThan(2e-6);
      }
    });
  }

  // The vision tower's fused forms: + bias, then GELU (the MLP's up projection), and q, k, v written in heads
  // padded with zeros to a multiple of 16 for flash attention. out starts as NaN: every value must be written.
  for (const type of ["f32", "bf16"]) {
    it.skipIf(!supported)(`adds the bias, applies the GELU and pads heads for ${type} weights`, async () => {
      const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      for (const { m, n, k, head, withGelu } of [
        { m: 13, n: 144, k: 96, head: 72, withGelu: false }, // So400m's heads: 72 → 80
        { m: 5, n: 48, k: 600, head: 24, withGelu: true },
        { m: 3, n: 32, k: 40, head: 16, withGelu: true }, // no padding needed
        { m: 20, n: 64, k: 1056, head: 0, withGelu: true },
      ]) {
        const w = await weights(type, n, k);
        const x = new Float32Array(m * k).map((_, i) => Math.cos(i * 0.71) * 0.2);
        const bias = new Float32Array(n).map((_, i) => Math.sin(i) * 2);
        const kernel = native.gemmKernel(type, k);
        const xs = Float64Array.from(x, (v) => (kernel === "avx512-bf16" ? roundBf16(v) : v));
        const plain = reference(decode(type, w, n, k), xs, m, n, k);
        const padded = head ? head + ((16 - (head % 16)) % 16) : 0;
        const width = head ? (n / head) * padded : n;
        const want = new Float64Array(m * width); // zeros in the padding
        for (let r = 0; r < m; r++) {
          for (let c = 0; c < n; c++) {
            const v = (plain[r * n + c] ?? 0) + (bias[c] ?? 0);
            want[r * width + (head ? Math.floor(c / head) * padded + (c % head) : c)] = withGelu ? gelu(v) : v;
          }
        }
        const out = new Float32Array(m * width).fill(Number.NaN);
        await native.matmul(type, "pali", m, n, k, w, x, out, 2, bias, withGelu, head);
        const label = `${type} ${m}×${n}×${k} head ${head} gelu ${withGelu} (${kernel})`;
        expect(out.every(Number.isFinite), label).toBe(true);
        expect(relL2(out, want), label).toBeLessThan(2e-6);
        for (let i = 0; i < want.length; i++) if (want[i] === 0) expect(out[i], `${label} padding ${i}`).toBe(0);
      }
    });
  }

  it.skipIf(!supported)("refuses what it cannot take", async () => {
    const w = await weights("f32", 16, 32);
    const x = new Float32Array(32);
    const out = new Float32Array(16);
    // the binding throws on the shapes at once and rejects on the rest: either way, the call fails
    const matmul = async (...args: Parameters<typeof native.matmul>) => native.matmul(...args);
    await expect(matmul("f32", "blas" as never, 1, 16, 32, w, x, out, 1)).rejects.toThrow(/"ggml" or "pali"/);
    await expect(matmul("f32", "pali", 1, 16, 32, w.subarray(4), x, out, 1)).rejects.toThrow(/bytes/);
    await expect(matmul("f32", "pali", 2, 16, 32, w, x, out, 1)).rejects.toThrow(/m \* k/);
    await expect(matmul("f32", "pali", 1, 16, 32, w, x, out, 1, null, false, 16 + 4)).rejects.toThrow(/head must divide n/);
    await expect(matmul("f32", "pali", 1, 16, 32, w, x, out, 1, null, false, 8)).rejects.toThrow(/rows of 32 floats/);
    await expect(matmul("f32", "ggml", 1, 16, 32, w, x, out, 1, null, true)).rejects.toThrow(/pali's path only/);
    const w8 = await weights("f32", 8, 32);
    await expect(matmul("f32", "pali", 1, 8, 32, w8, x, new Float32Array(8), 1)).rejects.toThrow(/multiple of 16/);
    await expect(
      matmul("q4_K", "pali", 1, 16, 256, await weights("q4_K", 16, 256), new Float32Array(256), out, 1),
    ).rejects.toThrow(/takes f32, f16, bf16 and q8_0/);
  });
});
