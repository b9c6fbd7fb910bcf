/** `pali tokenize -m MODEL.gguf [--json] -- TEXT`: the ids and pieces pali's tokenizer makes of TEXT. */
import { InvalidArgumentError } from "@pali/core";
import { readGGUF } from "@pali/gguf";
import { Tokenizer } from "@pali/tokenizer";
import type { Io } from "../output.js";

export const tokenizeHelp = `Usage: pali tokenize -m MODEL.gguf [--special] [--json] -- TEXT

Tokenizes TEXT with the model's tokenizer (SentencePiece BPE with byte fallback, as Gemma's).

Options:
  -m, --model FILE   the model GGUF (pali convert's <name>-<type>.gguf)
      --special      also match control tokens written in the text (<bos>, <eos>, <image>) whole
      --json         print {"ids": [...], "pieces": [...]} and nothing else
`;

export async function tokenize(
  options: { model: string | undefined; text: string | undefined; special: boolean; json: boolean },
  io: Io,
): Promise<number> {
  if (!options.model) throw new InvalidArgumentError("pali tokenize needs a model: -m MODEL.gguf");
  if (options.text === undefined)
    throw new InvalidArgumentError("pali tokenize needs the text after --: pali tokenize -m MODEL.gguf -- TEXT");
  const tokenizer = Tokenizer.fromGGUF(await readGGUF(options.model));
  const ids = tokenizer.encode(options.text, { parseSpecial: options.special });
  const pieces = tokenizer.pieces(ids);
  if (options.json) {
    io.stdout(`${JSON.stringify({ ids, pieces })}\n`);
  } else {
    io.stdout(
      `${ids.map((id, i) => `${String(id).padStart(7)}  ${JSON.stringify(pieces[i])}`).join("\n")}\n${ids.length} tokens\n`,
    );
  }
  return 0;
}
