/** The demo model and its example images, for the server's tests and the CLI's `pali serve` test. */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type LoadOptions, PaliGemma } from "@pali/sdk";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const demo = join(root, "models", "demo");
export const model = join(demo, "pali-demo-q8_0.gguf");
export const example = (n: number) => join(demo, "examples", `00${n}.png`);

export async function exampleBase64(n: number): Promise<string> {
  return (await readFile(example(n))).toString("base64");
}

export function loadDemo(options: Partial<LoadOptions> = {}): Promise<PaliGemma> {
  return PaliGemma.load({ model, threads: 1, ...options });
}

/**
 * A seed with which the demo model, captioning example 2 at temperature 5, writes `tokens` tokens before any
 * <eos> on this machine. Which seeds do depends on the CPU's kernels (each step ends the answer with a chance of
 * about 1/300): a fixed seed that ran long on one machine kind stopped at 290 tokens on another.
 */
export async function ramblingSeed(tokens: number): Promise<number> {
  const pg = await loadDemo();
  try {
    for (let seed = 1; seed <= 100; seed++) {
      const r = await pg.generate({
        image: example(2),
        prompt: "caption en",
        maxTokens: tokens,
        sampling: { temperature: 5, seed },
      });
      if (r.tokens.length === tokens) return seed;
    }
  } finally {
    pg.dispose();
  }
  throw new Error(`no seed in 1..100 makes the demo model write ${tokens} tokens`);
}
