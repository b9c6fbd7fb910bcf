/**
 * A PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) → `lora-<name>-f32.gguf`, which
 * libllama applies to the decoder, and, when the adapter reaches the vision tower or projector,
 * `mmproj-lora-<name>-f32.gguf`, which pali's SigLIP graph applies. Or, with merge, the base checkpoint
 * converted with the adapter folded into its weights. PEFT's scaling (alpha / r, or alpha / √r with rsLoRA,
 * per-module patterns included) is folded into B, so the files need no alpha.
 */
import { readFile, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import {
  expectAbortSignal,
  expectBoolean,
  expectNonEmptyString,
  findMmprojBeside,
  InvalidArgumentError,
  IoError,
  loraFileNames,
  ModelFormatError,
  optional,
  readGGUF,
  UnsupportedModelError,
} from "@pali/core";
import { type GGUFValue, writeGGUF } from "@pali/gguf";
import { type ConvertOptions, type ConvertResult, convertCheckpoint, type MatrixDelta, readCheckpoint } from "./convert.js";
import { readRows, readSafetensorsHeader, type SafetensorsTensor } from "./safetensors.js";
import { canonicalName, planText, planVision } from "./tensor-plan.js";

export interface LoraMatrix extends MatrixDelta {
  /** the module as PEFT names it */
  module: string;
  /** canonicalName's part and key of the adapted weight */
  part: "text" | "vision" | "projector";
  key: string;
  /** the GGUF tensor it adapts */
  tensor: string;
  inFeatures: number;
  outFeatures: number;
}

export interface PeftAdapter {
  dir: string;
  /** adapter_config.json's base_model_name_or_path */
  baseModel: string;
  matrices: LoraMatrix[];
}

export interface ConvertLoraOptions {
  /** the PEFT adapter folder */
  adapter: string;
  /** the base: a Hugging Face checkpoint folder, or a model GGUF (with its mmproj beside it, or `baseMmproj`) */
  base: string;
  baseMmproj?: string;
  outDir: string;
  /** defaults to the adapter folder's name */
  name?: string;
  /** fold the adapter into the base checkpoint's weights and convert that (needs a checkpoint folder) */
  merge?: boolean;
  force?: boolean;
  /** with merge: the converted files' types and threads */
  type?: ConvertOptions["type"];
  mmprojType?: ConvertOptions["mmprojType"];
  threads?: number;
  signal?: AbortSignal;
  onProgress?: ConvertOptions["onProgress"];
}

export interface ConvertLoraResult {
  /** the decoder adapter (absent with merge) */
  lora?: string;
  /** the vision adapter, when the adapter reaches the tower or projector (absent with merge) */
  visionLora?: string;
  /** with merge: the converted model and mmproj */
  merged?: ConvertResult;
  adapter: PeftAdapter;
}

// loraFileNames is pali's naming (@pali/base), re-exported for convert's users.
export { loraFileNames };

type Json = Record<string, unknown>;

const textMatrices: Record<string, string> = {
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output",
  "mlp.gate_proj": "ffn_gate",
  "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
};
const visionMatrices: Record<string, string> = {
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.out_proj": "attn_out",
  "mlp.fc1": "ffn_up",
  "mlp.fc2": "ffn_down",
};

/** The GGUF tensor a PEFT module adapts, or undefined for modules pali cannot adapt. */
function targetTensor(module: string): { part: LoraMatrix["part"]; key: string; tensor: string } | undefined {
  const c = canonicalName(`${module}.weight`);
  if (c === undefined || c.part === "ignored") return undefined;
  if (c.part === "projector")
    return c.key === "linear.weight" ? { part: c.part, key: c.key, tensor: "mm.proj.weight" } : undefined;
  const m =
    c.part === "text" ? /^layers\.(\d+)\.(.+)\.weight$/.exec(c.key) : /^encoder\.layers\.(\d+)\.(.+)\.weight$/.exec(c.key);
  const gguf = m && (c.part === "text" ? textMatrices : visionMatrices)[m[2] as string];
  if (!m || gguf === undefined) return undefined;
  return { part: c.part, key: c.key, tensor: `${c.part === "text" ? "" : "v."}blk.${m[1]}.${gguf}.weight` };
}

function unsupported(dir: string, what: string): UnsupportedModelError {
  return new UnsupportedModelError(`The adapter in ${dir} ${what}`);
}

/** PEFT's pattern lookup: the first key that matches the module name's tail, as `(.*\.)?(key)$`. */
function patternValue(patterns: unknown, module: string): number | undefined {
  if (typeof patterns !== "object" || patterns === null) return undefined;
  for (const [key, value] of Object.entries(patterns)) {
    if (new RegExp(`^(.*\\.)?(${key})$`).test(module) && typeof value === "number") return value;
  }
  return undefined;
}

async function readConfig(dir: string): Promise<Json> {
  const path = join(dir, "adapter_config.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new ModelFormatError(
      `${dir} is not a PEFT adapter folder: it has no adapter_config.json (save the adapter with model.save_pretrained)`,
      { cause },
    );
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not a JSON object");
    return parsed as Json;
  } catch (cause) {
    throw new ModelFormatError(`Could not read ${path}: ${(cause as Error).message}`, { cause });
  }
}

/** Reads and checks a PEFT LoRA adapter; every matrix comes back as float32 with PEFT's scaling folded into B. */
export async function readPeftAdapter(dir: string): Promise<PeftAdapter> {
  const config = await readConfig(dir);
  if (config.peft_type !== "LORA")
    throw unsupported(dir, `is a ${String(config.peft_type)} adapter; pali converts LoRA adapters`);
  const r = config.r;
  if (typeof r !== "number" || !Number.isInteger(r) || r < 1) {
    throw new ModelFormatError(
      `The adapter in ${dir} has rank r = ${JSON.stringify(r)}; a LoRA rank is an integer of at least 1`,
    );
  }
  const alpha = config.lora_alpha ?? r;
  if (typeof alpha !== "number" || !Number.isFinite(alpha))
    throw new ModelFormatError(`The adapter in ${dir} has lora_alpha ${JSON.stringify(alpha)}`);
  if (config.use_dora === true)
    throw unsupported(dir, "uses DoRA (use_dora), which libllama does not apply; merge it in Python first");
  if (config.fan_in_fan_out === true) throw unsupported(dir, "sets fan_in_fan_out, which PaliGemma's linear layers never need");
  if (config.bias !== undefined && config.bias !== "none")
    throw unsupported(dir, `trains biases (bias = ${JSON.stringify(config.bias)}); pali converts bias = "none"`);
  if (Array.isArray(config.modules_to_save) && config.modules_to_save.length > 0) {
    throw unsupported(
      dir,
      `saves whole modules (${config.modules_to_save.join(", ")}) beside the LoRA matrices; pali converts LoRA matrices only`,
    );
  }
  if (config.lora_bias === true) throw unsupported(dir, "trains a bias on lora_B (lora_bias), which libllama does not apply");
  for (const key of ["target_parameters", "trainable_token_indices", "layer_replication"]) {
    const v = config[key];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0))
      throw unsupported(dir, `sets ${key}, which pali does not convert`);
  }
  const rslora = config.use_rslora === true;

  const file = join(dir, "adapter_model.safetensors");
  if (!(await stat(file).catch(() => undefined))?.isFile()) {
    throw new ModelFormatError(
      `${dir} has no adapter_model.safetensors (pali reads safetensors adapters; save with safe_serialization=True)`,
    );
  }
  const pairs = new Map<string, { a?: SafetensorsTensor; b?: SafetensorsTensor }>();
  for (const t of await readSafetensorsHeader(file)) {
    const m = /^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[\w-]+)?\.weight$/.exec(t.name);
    if (!m)
      throw unsupported(
        dir,
        `holds ${t.name}, which is not a LoRA A or B matrix (embedding LoRA and other kinds are not supported)`,
      );
    const module = m[1] as string;
    const pair = pairs.get(module) ?? {};
    pair[m[2] === "A" ? "a" : "b"] = t;
    pairs.set(module, pair);
  }
  if (pairs.size === 0) throw new ModelFormatError(`${file} holds no LoRA matrices`);
  const matrices: LoraMatrix[] = [];
  for (const [module, { a, b }] of pairs) {
    const target = targetTensor(module);
    if (target === undefined) {
      throw unsupported(
        dir,
        `targets ${module}, which pali cannot adapt: LoRA applies to the attention and MLP matrices of the decoder and the vision tower, and to the projector`,
      );
    }
    if (a === undefined || b === undefined) throw new ModelFormatError(`${file} has only one of lora_A and lora_B for ${module}`);
    const [rank, inFeatures] = a.shape as [number, number];
    const [outFeatures, rankB] = b.shape as [number, number];
    if (a.shape.length !== 2 || b.shape.length !== 2 || rank !== rankB) {
      throw new ModelFormatError(
        `${file}: ${module} has lora_A [${a.shape.join(", ")}] and lora_B [${b.shape.join(", ")}], which do not make a product`,
      );
    }
    if (rank < 1) throw new ModelFormatError(`${file}: ${module} has rank 0`);
    const moduleAlpha = patternValue(config.alpha_pattern, module) ?? alpha;
    const scale = rslora ? moduleAlpha / Math.sqrt(rank) : moduleAlpha / rank;
    const bValues = await readRows(b, rank, 0, outFeatures);
    for (let i = 0; i < bValues.length; i++) bValues[i] = (bValues[i] as number) * scale;
    matrices.push({ module, ...target, rank, inFeatures, outFeatures, a: await readRows(a, inFeatures, 0, rank), b: bValues });
  }
  const baseModel = typeof config.base_model_name_or_path === "string" ? config.base_model_name_or_path : "";
  return { dir, baseModel, matrices };
}

/** The base's matrices [in, out] (ggml order) by GGUF name, with its decoder architecture. */
async function baseShapes(
  base: string,
  baseMmproj: string | undefined,
): Promise<{ arch: string; shapes: Map<string, number[]> }> {
  const shapes = new Map<string, number[]>();
  const info = await stat(base).catch(() => undefined);
  if (info === undefined) throw new IoError(`No such base model or checkpoint: ${base}`);
  if (info.isDirectory()) {
    const { spec, parts } = await readCheckpoint(base);
    const plan = [
      ...planText(spec, (k) => parts.text.get(k), "f32"),
      ...planVision(
        spec,
        (k) => parts.vision.get(k),
        (k) => parts.projector.get(k),
        "f32",
      ),
    ];
    for (const t of plan) shapes.set(t.name, t.shape);
    return { arch: spec.text.arch, shapes };
  }
  const model = await readGGUF(base);
  const arch = model.metadata.get("general.architecture");
  if (arch?.type !== "str" || (arch.value !== "gemma" && arch.value !== "gemma2")) {
    throw new InvalidArgumentError(
      `${base} is not a PaliGemma model file; pass the decoder GGUF (or the checkpoint folder) as the base`,
    );
  }
  const mmprojPath = baseMmproj ?? (await findMmprojBeside(base));
  for (const file of [model, ...(mmprojPath ? [await readGGUF(mmprojPath)] : [])]) {
    for (const t of file.tensors) shapes.set(t.name, t.shape);
  }
  return { arch: arch.value, shapes };
}

function checkAgainstBase(adapter: PeftAdapter, base: string, shapes: Map<string, number[]>): void {
  for (const m of adapter.matrices) {
    const shape = shapes.get(m.tensor);
    if (shape === undefined) {
      throw new InvalidArgumentError(
        `The adapter targets ${m.module}, but the base ${base} has no ${m.tensor}${m.part === "text" ? "" : " (is its mmproj beside it?)"}; was it trained on another base model?`,
      );
    }
    if (shape[0] !== m.inFeatures || shape[1] !== m.outFeatures) {
      throw new InvalidArgumentError(
        `The adapter's ${m.module} maps ${m.inFeatures} → ${m.outFeatures} features but the base's ${m.tensor} is [${shape.join(", ")}]: the adapter was trained for another base model${adapter.baseModel ? ` (${adapter.baseModel})` : ""}`,
      );
    }
  }
}

function adapterMetadata(arch: string, name: string, adapter: PeftAdapter, base: string): [string, GGUFValue][] {
  const str = (value: string): GGUFValue => ({ type: "str", value });
  return [
    ["general.architecture", str(arch)],
    ["general.type", str("adapter")],
    ["general.name", str(name)],
    ["adapter.type", str("lora")],
    ["paligemma.lora.source", str(basename(resolve(adapter.dir)))],
    ["paligemma.lora.base", str(adapter.baseModel || basename(resolve(base)))],
  ];
}

function loraTensors(matrices: LoraMatrix[]) {
  const bytes = (v: Float32Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return matrices.flatMap((m) => [
    { name: `${m.tensor}.lora_a`, type: "f32", shape: [m.inFeatures, m.rank], data: bytes(m.a) },
    { name: `${m.tensor}.lora_b`, type: "f32", shape: [m.rank, m.outFeatures], data: bytes(m.b) },
  ]);
}

export async function convertLora(options: ConvertLoraOptions): Promise<ConvertLoraResult> {
  const dir = expectNonEmptyString(options.adapter, "adapter");
  const base = expectNonEmptyString(options.base, "base");
  const outDir = expectNonEmptyString(options.outDir, "outDir");
  const merge = optional(options.merge, false, (v) => expectBoolean(v, "merge"));
  const force = optional(options.force, false, (v) => expectBoolean(v, "force"));
  const signal = expectAbortSignal(options.signal, "signal");
  const name = optional(options.name, basename(resolve(dir)), (v) => expectNonEmptyString(v, "name"));
  if (/[/\\]/.test(name))
    throw new InvalidArgumentError(`Expected a file name without slashes for name but received ${JSON.stringify(name)}`);
  if (!(await stat(dir).catch(() => undefined))?.isDirectory())
    throw new IoError(`${dir} is not a directory; pass the folder PEFT saved the adapter in`);
  if (!(await stat(outDir).catch(() => undefined))?.isDirectory())
    throw new IoError(`Output folder ${outDir} does not exist; create it first.`);

  const adapter = await readPeftAdapter(dir);
  const { arch, shapes } = await baseShapes(base, options.baseMmproj);
  checkAgainstBase(adapter, base, shapes);

  if (merge) {
    if (!(await stat(base)).isDirectory()) {
      throw new InvalidArgumentError(
        `--merge folds the adapter into the original weights: pass the Hugging Face checkpoint folder as --base, not ${base}`,
      );
    }
    const deltas = new Map(adapter.matrices.map((m) => [`${m.part}:${m.key}`, m] as const));
    const merged = await convertCheckpoint({
      input: base,
      outDir,
      name,
      deltas,
      ...(options.type ? { type: options.type } : {}),
      ...(options.mmprojType ? { mmprojType: options.mmprojType } : {}),
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      ...(signal ? { signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      force,
    });
    return { merged, adapter };
  }

  const files = loraFileNames(name);
  const lora = join(outDir, files.lora);
  const visionLora = join(outDir, files.visionLora);
  const vision = adapter.matrices.filter((m) => m.part !== "text");
  for (const p of vision.length > 0 ? [lora, visionLora] : [lora]) {
    if (!force && (await stat(p).catch(() => undefined)))
      throw new InvalidArgumentError(`${p} already exists; pass --force (force: true) to overwrite it`);
  }
  const write = signal ? { signal } : {};
  // The decoder file is written even when only the tower is adapted: it names the adapter, and libllama loads it as a no-op.
  await writeGGUF(
    lora,
    adapterMetadata(arch, name, adapter, base),
    loraTensors(adapter.matrices.filter((m) => m.part === "text")),
    write,
  );
  if (vision.length === 0) return { lora, adapter };
  await writeGGUF(visionLora, adapterMetadata("clip", name, adapter, base), loraTensors(vision), write);
  return { lora, visionLora, adapter };
}
