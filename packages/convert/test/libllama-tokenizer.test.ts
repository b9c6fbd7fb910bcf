/**
 * libllama's own tokenizer, reading the vocabulary the converter wrote, against the sentencepiece library
 * (models/fixtures/tokenizer/cases.json) and against @pali/tokenizer on the same GGUF.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { TextModel } from "@pali/core";
import { readGGUF } from "@pali/gguf";
import { Tokenizer } from "@pali/tokenizer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../src/index.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "models", "fixtures");

interface Case {
  text: string;
  ids: number[];
}

let out: string;
let model: TextModel;
let tokenizer: Tokenizer;
let cases: Case[];

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), "pali-tok-llama-"));
  const { model: path } = await convertCheckpoint({ input: join(fixtures, "checkpoints", "pg1-224"), outDir: out, type: "q8_0" });
  model = await TextModel.load(path);
  tokenizer = Tokenizer.fromGGUF(await readGGUF(path));
  cases = (JSON.parse(await readFile(join(fixtures, "tokenizer", "cases.json"), "utf8")) as { cases: Case[] }).cases;
});

afterAll(async () => {
  model?.dispose();
  await rm(out, { recursive: true, force: true });
});

describe("libllama's tokenizer on the converted vocabulary", () => {
  it("has enough cases to mean something", () => {
    expect(cases.length).toBeGreaterThanOrEqual(2000);
  });

  it("gives sentencepiece's ids, as @pali/tokenizer does", () => {
    const mismatches: string[] = [];
    let turnCases = 0;
    for (const c of cases) {
      if (c.text.length > 20_000) continue; // the few huge cases run through @pali/tokenizer's own tests
      const ours = tokenizer.encode(c.text);
      expect(ours, JSON.stringify(c.text)).toEqual(c.ids);
      // libllama's loader retypes user-defined pieces that look like control tokens (<start_of_turn>,
      // <end_of_turn>) as control tokens, which it then matches only with parse_special: a libllama
      // quirk, not a vocabulary difference. pali tokenizes with @pali/tokenizer.
      const turn = /<(start|end)_of_turn>/.test(c.text);
      if (turn && /<(bos|eos|pad|unk|image)>/.test(c.text)) continue;
      turnCases += turn ? 1 : 0;
      const llama = model.tokenize(c.text, { parseSpecial: turn });
      if (JSON.stringify(llama) !== JSON.stringify(c.ids)) mismatches.push(JSON.stringify(c.text));
    }
    expect(turnCases).toBeGreaterThan(0);
    expect(mismatches).toEqual([]);
  });

  it("matches <image>, <bos> and loc/seg tokens whole when asked to parse special tokens", () => {
    const text = "<image><image><bos>detect cat<loc0001><seg127>\n";
    const ours = tokenizer.encode(text, { parseSpecial: true });
    expect(model.tokenize(text, { parseSpecial: true })).toEqual(ours);
    expect(ours.slice(0, 3)).toEqual([5152, 5152, 2]);
  });
});
