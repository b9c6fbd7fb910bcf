/** Converted tiny fixtures for the SDK tests, made once per test file in a temp folder. */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { convertCheckpoint, type MmprojType, type ModelType } from "@pali/convert";

export const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "models", "fixtures");
export const references = join(fixtures, "references");

export interface ReferenceCase {
  photo: string;
  prompt: string;
  prefixIds: number[];
  imageTokens: number;
  firstStepTop: { ids: number[]; values: number[] };
  greedy: { id: number; margin: number }[];
  suffix: string;
  suffixIds: number[];
  suffixLogprobs: number[];
  suffixTotal: number;
}

export async function referenceCases(checkpoint: string): Promise<ReferenceCase[]> {
  return (JSON.parse(await readFile(join(references, checkpoint, "cases.json"), "utf8")) as { cases: ReferenceCase[] }).cases;
}

export async function readF32(path: string): Promise<Float32Array> {
  const b = await readFile(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

export class ConvertedFixtures {
  dir = "";
  async init(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), "pali-sdk-"));
  }
  async convert(
    checkpoint: string,
    type: ModelType = "f32",
    mmprojType: MmprojType = "f32",
  ): Promise<{ model: string; mmproj: string }> {
    return convertCheckpoint({
      input: join(fixtures, "checkpoints", checkpoint),
      outDir: this.dir,
      type,
      mmprojType,
      name: checkpoint,
      force: true,
    });
  }
  async cleanup(): Promise<void> {
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Greedy tokens compared up to the first step whose reference margin is below `minMargin` (a near-tie). */
export function decisivePrefix(greedy: { id: number; margin: number }[], minMargin: number): number[] {
  const out: number[] = [];
  for (const g of greedy) {
    if (g.margin < minMargin) break;
    out.push(g.id);
  }
  return out;
}

/** ‖a − b‖ / ‖b‖ */
export function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += ((a[i] as number) - (b[i] as number)) ** 2;
    den += (b[i] as number) ** 2;
  }
  return Math.sqrt(num / den);
}

/** max |a − b| / max |b| */
export function maxRelative(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
    scale = Math.max(scale, Math.abs(b[i] as number));
  }
  return diff / scale;
}
