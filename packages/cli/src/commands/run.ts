/** `pali run` (generate, streaming) and `pali score` (teacher-forced log-probabilities). */
import { InvalidArgumentError } from "@pali/core";
import { PaliGemma } from "@pali/sdk";
import { loraAdapters, loraHelp } from "../lora.js";
import type { Io } from "../output.js";

export const runHelp = `Usage: pali run -m MODEL.gguf [--mmproj MMPROJ.gguf] -i IMAGE [-i IMAGE2 ...] -p PROMPT [options]

Answers PROMPT about IMAGE (or about all the images, in order), streaming the text as it is generated.

Options:
  -m, --model FILE      the model GGUF (pali convert's <name>-<type>.gguf)
      --mmproj FILE     the image encoder GGUF (default: mmproj-<name>-*.gguf beside the model)
  -i, --image FILE      a JPEG, PNG, WebP, AVIF, GIF, TIFF or HEIF image; repeat it for one prompt over several
                        images, read in order (-i left.jpg -i right.jpg; video frames)
  -p, --prompt TEXT     e.g. "caption en", "answer en what is this?", "detect cat ; dog", "ocr"
      --max-tokens N    at most N answer tokens (default 128)
      --temperature T   0 (default) is greedy; > 0 samples
      --top-k K, --top-p P, --seed S   sampling controls
      --beams B         beam search with B beams (default 1; at most 4), as transformers' num_beams
      --threads N       CPU threads (default: physical cores)
${loraHelp}
      --json            print {"text","tokens","finishReason","timings"} and nothing else
`;

export const scoreHelp = `Usage: pali score -m MODEL.gguf [--mmproj MMPROJ.gguf] -i IMAGE [-i IMAGE2 ...] -p PROMPT --suffix TEXT [--json]

Prints the log-probability of each token of TEXT (then <eos>) after the image(s) and prompt, and their sum.

Options: --threads N, --json, and
${loraHelp}
`;

export interface RunOptions {
  model: string | undefined;
  mmproj: string | undefined;
  /** one or more (repeated -i: one prompt over all of them) */
  images: string[];
  prompt: string | undefined;
  suffix?: string | undefined;
  maxTokens?: string | undefined;
  temperature?: string | undefined;
  topK?: string | undefined;
  topP?: string | undefined;
  seed?: string | undefined;
  beams?: string | undefined;
  threads?: string | undefined;
  lora?: string[] | undefined;
  json: boolean;
}

const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

async function open(o: RunOptions): Promise<PaliGemma> {
  if (!o.model) throw new InvalidArgumentError("Pass the model with -m MODEL.gguf");
  if (o.images.length === 0) throw new InvalidArgumentError("Pass an image with -i IMAGE");
  if (o.prompt === undefined) throw new InvalidArgumentError('Pass a prompt with -p, e.g. -p "caption en"');
  const threads = num(o.threads);
  return PaliGemma.load({
    model: o.model,
    ...(o.mmproj ? { mmproj: o.mmproj } : {}),
    ...(threads !== undefined ? { threads } : {}),
    // the prefix batch and the default context are sized for this many images
    maxImages: o.images.length,
    ...loraAdapters(o.lora),
  });
}

/** One -i: that image; several: the list (the SDK reads them in order in one prompt). */
const imageArg = (o: RunOptions) => (o.images.length === 1 ? (o.images[0] as string) : o.images);

function onInterrupt(controller: AbortController): () => void {
  const stop = () => controller.abort(new Error("interrupted"));
  process.once("SIGINT", stop);
  return () => process.off("SIGINT", stop);
}

export async function run(o: RunOptions, io: Io): Promise<number> {
  await using pg = await open(o);
  const controller = new AbortController();
  const release = onInterrupt(controller);
  try {
    const sampling = {
      ...(o.temperature !== undefined ? { temperature: Number(o.temperature) } : {}),
      ...(o.topK !== undefined ? { topK: Number(o.topK) } : {}),
      ...(o.topP !== undefined ? { topP: Number(o.topP) } : {}),
      ...(o.seed !== undefined ? { seed: Number(o.seed) } : {}),
    };
    const request = {
      image: imageArg(o),
      prompt: o.prompt as string,
      sampling,
      signal: controller.signal,
      ...(o.maxTokens !== undefined ? { maxTokens: Number(o.maxTokens) } : {}),
      ...(o.beams !== undefined ? { beams: Number(o.beams) } : {}),
    };
    if (o.json) {
      const r = await pg.generate(request);
      io.stdout(`${JSON.stringify({ text: r.text, tokens: r.tokens, finishReason: r.finishReason, timings: r.timings })}\n`);
    } else {
      for await (const chunk of pg.stream(request)) io.stdout(chunk.text);
      io.stdout("\n");
    }
    return 0;
  } finally {
    release();
  }
}

export async function score(o: RunOptions, io: Io): Promise<number> {
  if (o.suffix === undefined) throw new InvalidArgumentError("Pass the text to score with --suffix TEXT");
  await using pg = await open(o);
  const r = await pg.score({ image: imageArg(o), prompt: o.prompt as string, suffix: o.suffix });
  if (o.json) {
    io.stdout(`${JSON.stringify(r)}\n`);
  } else {
    const pieces = pg.tokenizer.pieces(r.tokens);
    for (const [i, t] of r.tokens.entries())
      io.stdout(`${String(t).padStart(7)}  ${(r.logprobs[i] as number).toFixed(4).padStart(9)}  ${JSON.stringify(pieces[i])}\n`);
    io.stdout(`total ${r.total.toFixed(4)}\n`);
  }
  return 0;
}
