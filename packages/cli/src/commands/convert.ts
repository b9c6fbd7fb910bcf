/** `pali convert HF_DIR -o OUT_DIR`: a Hugging Face PaliGemma checkpoint to model + mmproj GGUF files. */
import { convertCheckpoint, convertLora, convertSegVae, type ModelType, mmprojTypes, modelTypes } from "@pali/convert";
import { expectOneOf, InvalidArgumentError } from "@pali/core";
import type { Io } from "../output.js";
import { createProgress, progressMode } from "../progress.js";

export const convertHelp = `Usage: pali convert HF_DIR -o OUT_DIR [options]
       pali convert --seg-vae vae-oid.npz -o OUT_DIR [--force] [--json]
       pali convert --lora PEFT_ADAPTER_DIR --base CHECKPOINT_OR_MODEL -o OUT_DIR [--merge] [--name NAME]

Converts a PaliGemma 1 or 2 checkpoint saved by transformers (config.json, *.safetensors, tokenizer.model)
into OUT_DIR/<name>-<type>.gguf (the Gemma decoder, loadable by llama.cpp) and
OUT_DIR/mmproj-<name>-<mmproj-type>.gguf (the SigLIP image encoder and projector).

Options:
  -o, --out DIR            output folder (must exist)
  -t, --type TYPE          model weights: ${modelTypes.join(", ")} (default f16)
      --mmproj-type TYPE   image encoder weights: ${mmprojTypes.join(", ")}, or auto (default): the
                           fastest measured for this CPU (q8_0 on x86 with AVX2, else f16)
      --name NAME          file name stem (default: the checkpoint folder's name)
      --threads N          quantization threads (default: physical cores)
      --seg-vae FILE.npz   also (or only) convert big_vision's segmentation VQ-VAE into
                           OUT_DIR/mask-decoder-f32.gguf, shared by every PaliGemma model
      --lora DIR           a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) →
                           OUT_DIR/lora-<name>-f32.gguf (the decoder's, applied by libllama) and, when it
                           adapts the vision tower or projector, OUT_DIR/mmproj-lora-<name>-f32.gguf;
                           load them with --lora FILE (CLI) or adapters: [{ path }] (SDK)
      --base PATH          with --lora: the base it was trained on, a checkpoint folder or a model GGUF
                           (its mmproj beside it, or --base-mmproj FILE)
      --merge              with --lora: fold the adapter into the base checkpoint's weights and convert
                           that (needs the checkpoint folder; --type and --mmproj-type apply)
      --force              overwrite existing output files
      --json               print {"model": PATH, "mmproj": PATH} and nothing else
`;

export interface ConvertCliOptions {
  input: string | undefined;
  out: string | undefined;
  type: string | undefined;
  mmprojType: string | undefined;
  name: string | undefined;
  threads: string | undefined;
  segVae: string | undefined;
  lora?: string | undefined;
  base?: string | undefined;
  baseMmproj?: string | undefined;
  merge?: boolean;
  force: boolean;
  json: boolean;
}

export async function convert(options: ConvertCliOptions, io: Io): Promise<number> {
  if (options.lora !== undefined) return convertAdapter(options, io);
  if (options.base !== undefined || options.merge) throw new InvalidArgumentError("--base and --merge go with --lora DIR");
  if (!options.input && !options.segVae)
    throw new InvalidArgumentError("pali convert needs the checkpoint folder: pali convert HF_DIR -o OUT_DIR");
  if (!options.out) throw new InvalidArgumentError("pali convert needs an output folder: -o OUT_DIR");
  const out = options.out;
  const threads = options.threads === undefined ? undefined : Number(options.threads);
  const controller = new AbortController();
  const stop = () => controller.abort(new Error("interrupted"));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const progress = createProgress(progressMode(options.json));
  try {
    const maskDecoder = options.segVae
      ? (await convertSegVae(options.segVae, out, { force: options.force, signal: controller.signal })).path
      : undefined;
    if (!options.input) {
      io.stdout(options.json ? `${JSON.stringify({ maskDecoder })}\n` : `mask decoder: ${maskDecoder}\n`);
      return 0;
    }
    const result = await convertCheckpoint({
      input: options.input,
      outDir: out,
      ...(options.type !== undefined ? { type: expectOneOf(options.type, "--type", modelTypes) as ModelType } : {}),
      ...(options.mmprojType !== undefined
        ? { mmprojType: expectOneOf(options.mmprojType, "--mmproj-type", [...mmprojTypes, "auto"] as const) }
        : {}),
      ...(options.name !== undefined ? { name: options.name } : {}),
      ...(threads !== undefined ? { threads } : {}),
      force: options.force,
      signal: controller.signal,
      onProgress: (p) => progress.update(p.done / p.total, `${p.file} ${p.tensor}`),
    });
    progress.done();
    const extra = maskDecoder ? { maskDecoder } : {};
    if (options.json) io.stdout(`${JSON.stringify({ model: result.model, mmproj: result.mmproj, ...extra })}\n`);
    else io.stdout(`model:  ${result.model}\nmmproj: ${result.mmproj}\n${maskDecoder ? `mask decoder: ${maskDecoder}\n` : ""}`);
    return 0;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

async function convertAdapter(options: ConvertCliOptions, io: Io): Promise<number> {
  if (!options.base)
    throw new InvalidArgumentError("pali convert --lora needs the base it was trained on: --base CHECKPOINT_OR_MODEL");
  if (!options.out) throw new InvalidArgumentError("pali convert needs an output folder: -o OUT_DIR");
  if (options.input)
    throw new InvalidArgumentError("pali convert --lora takes the adapter folder as --lora DIR, not as an argument");
  const progress = createProgress(progressMode(options.json));
  const result = await convertLora({
    adapter: options.lora as string,
    base: options.base,
    outDir: options.out,
    merge: options.merge === true,
    force: options.force,
    ...(options.baseMmproj ? { baseMmproj: options.baseMmproj } : {}),
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.type !== undefined ? { type: expectOneOf(options.type, "--type", modelTypes) as ModelType } : {}),
    ...(options.mmprojType !== undefined
      ? { mmprojType: expectOneOf(options.mmprojType, "--mmproj-type", [...mmprojTypes, "auto"] as const) }
      : {}),
    ...(options.threads !== undefined ? { threads: Number(options.threads) } : {}),
    onProgress: (p) => progress.update(p.done / p.total, `${p.file} ${p.tensor}`),
  });
  progress.done();
  const files = result.merged
    ? { model: result.merged.model, mmproj: result.merged.mmproj }
    : { lora: result.lora, ...(result.visionLora ? { visionLora: result.visionLora } : {}) };
  const matrices = result.adapter.matrices.length;
  if (options.json) io.stdout(`${JSON.stringify({ ...files, matrices })}\n`);
  else
    io.stdout(
      `${Object.entries(files)
        .map(([k, v]) => `${k}: ${v}`)
        .join("\n")}\n${matrices} adapted matrices\n`,
    );
  return 0;
}
