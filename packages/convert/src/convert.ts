/**
 * Hugging Face PaliGemma checkpoint → `<name>-<type>.gguf` (Gemma / Gemma 2 decoder for libllama) and
 * `mmproj-<name>-<type>.gguf` (SigLIP tower and projector). Streams a few MiB of rows at a time, so the
 * extra memory stays far below one tensor whatever the checkpoint's size.
 */
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import {
  convertRows,
  expectAbortSignal,
  expectBoolean,
  expectInteger,
  expectNonEmptyString,
  expectOneOf,
  InvalidArgumentError,
  IoError,
  ModelFormatError,
  mmprojFileName,
  modelFileName,
  optional,
  PaliError,
  systemInfo,
  throwIfAborted,
} from "@pali/core";
import { type GGUFValue, writeGGUF } from "@pali/gguf";
import { type PaliGemmaSpec, parsePaliGemmaConfig } from "./hf-config.js";
import { readRows, readSafetensorsHeader, type SafetensorsTensor } from "./safetensors.js";
import {
  autoMmprojType,
  canonicalName,
  llamaFileType,
  type MmprojType,
  type ModelType,
  mmprojTypes,
  modelTypes,
  type PlannedTensor,
  planText,
  planVision,
} from "./tensor-plan.js";
import { LOC_COUNT, readVocabulary, SEG_COUNT, vocabularyMetadata } from "./vocab.js";

export const CONVERTER_VERSION = "pali-convert 0.1.0";

export interface ConvertProgress {
  file: "model" | "mmproj";
  tensor: string;
  /** source bytes read so far, over both files */
  done: number;
  total: number;
}

export interface ConvertOptions {
  /** the checkpoint directory (config.json, *.safetensors, tokenizer.model) */
  input: string;
  outDir: string;
  type?: ModelType;
  /** "auto" (the default): autoMmprojType for this CPU */
  mmprojType?: MmprojType | "auto";
  /** defaults to the checkpoint folder's name */
  name?: string;
  /** overwrite existing outputs */
  force?: boolean;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (progress: ConvertProgress) => void;
  /** low-rank changes to merge, by `${part}:${key}` of canonicalName (see convertLora's merge) */
  deltas?: ReadonlyMap<string, MatrixDelta>;
}

export interface ConvertResult {
  model: string;
  mmproj: string;
  spec: PaliGemmaSpec;
}

const CHUNK_VALUES = 4 * 1024 * 1024;
/** A sliding window no context reaches: libllama then attends globally in Gemma 2's sliding layers. */
export const GLOBAL_WINDOW = 1 << 20;

async function loadTensors(dir: string): Promise<SafetensorsTensor[]> {
  const index = join(dir, "model.safetensors.index.json");
  let files: string[];
  try {
    const parsed = JSON.parse(await readFile(index, "utf8")) as { weight_map?: Record<string, string> };
    if (!parsed.weight_map) throw new ModelFormatError(`${index} has no weight_map`);
    files = [...new Set(Object.values(parsed.weight_map))].map((f) => join(dir, f));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      if (error instanceof PaliError) throw error;
      throw new ModelFormatError(`Could not read ${index}: ${(error as Error).message}`, { cause: error });
    }
    files = (await readdir(dir)).filter((f) => f.endsWith(".safetensors")).map((f) => join(dir, f));
  }
  if (files.length === 0) throw new ModelFormatError(`${dir} has no *.safetensors weights`);
  const all: SafetensorsTensor[] = [];
  for (const file of files.sort()) all.push(...(await readSafetensorsHeader(file)));
  return all;
}

export type CheckpointParts = ReturnType<typeof lookups>;

function lookups(tensors: SafetensorsTensor[]) {
  const parts = {
    text: new Map<string, SafetensorsTensor>(),
    vision: new Map<string, SafetensorsTensor>(),
    projector: new Map<string, SafetensorsTensor>(),
  };
  for (const t of tensors) {
    const c = canonicalName(t.name);
    if (c === undefined)
      throw new ModelFormatError(`Unexpected tensor ${t.name} in ${t.file}: not part of a PaliGemma checkpoint`);
    if (c.part === "ignored") continue;
    const map = parts[c.part];
    if (map.has(c.key))
      throw new ModelFormatError(`Tensor ${t.name} appears twice in the checkpoint (${map.get(c.key)?.file} and ${t.file})`);
    map.set(c.key, t);
  }
  return parts;
}

/** A low-rank change merged into one matrix: W += B·A, with B already scaled (pali convert --lora --merge). */
export interface MatrixDelta {
  rank: number;
  /** [rank][in] row-major */
  a: Float32Array;
  /** [out][rank] row-major */
  b: Float32Array;
}

/** Adds rows [first, first + count) of B·A to `values` (count rows of length `rowLength`). */
function addDelta(values: Float32Array, delta: MatrixDelta, rowLength: number, first: number, count: number): void {
  const { rank, a, b } = delta;
  for (let row = 0; row < count; row++) {
    const at = row * rowLength;
    for (let k = 0; k < rank; k++) {
      const coefficient = b[(first + row) * rank + k] as number;
      if (coefficient === 0) continue;
      const from = k * rowLength;
      for (let i = 0; i < rowLength; i++) values[at + i] = (values[at + i] as number) + coefficient * (a[from + i] as number);
    }
  }
}

/** The bytes of one planned tensor, a few MiB at a time. */
function tensorData(
  t: PlannedTensor,
  threads: number,
  signal: AbortSignal | undefined,
  onRead: (bytes: number) => void,
  delta?: MatrixDelta,
) {
  return async function* (): AsyncGenerator<Uint8Array> {
    const rowLength = t.shape[0] as number;
    const rows = t.shape.reduce((a, b) => a * b, 1) / rowLength;
    const chunkRows = Math.max(1, Math.floor(CHUNK_VALUES / rowLength));
    const sourceBytesPerRow = t.source.byteLength / rows;
    for (let first = 0; first < rows; first += chunkRows) {
      throwIfAborted(signal);
      const count = Math.min(chunkRows, rows - first);
      const values = await readRows(t.source, rowLength, first, count);
      if (t.addOne) for (let i = 0; i < values.length; i++) values[i] = (values[i] as number) + 1;
      if (delta) addDelta(values, delta, rowLength, first, count);
      yield t.type === "f32"
        ? new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
        : await convertRows(t.type, values, rowLength, { threads });
      onRead(count * sourceBytesPerRow);
    }
  };
}

export function modelMetadata(
  spec: PaliGemmaSpec,
  name: string,
  type: ModelType,
  vocab: Awaited<ReturnType<typeof readVocabulary>>,
): [string, GGUFValue][] {
  const t = spec.text;
  const a = t.arch;
  const u32 = (value: number): GGUFValue => ({ type: "u32", value });
  const f32 = (value: number): GGUFValue => ({ type: "f32", value });
  const str = (value: string): GGUFValue => ({ type: "str", value });
  const kv: [string, GGUFValue][] = [
    ["general.architecture", str(a)],
    ["general.name", str(name)],
    ["general.file_type", u32(llamaFileType[type])],
    ["general.quantization_version", u32(2)],
    [`${a}.context_length`, u32(t.contextLength)],
    [`${a}.embedding_length`, u32(t.hiddenSize)],
    [`${a}.block_count`, u32(t.layers)],
    [`${a}.feed_forward_length`, u32(t.intermediateSize)],
    [`${a}.attention.head_count`, u32(t.heads)],
    [`${a}.attention.head_count_kv`, u32(t.kvHeads)],
    [`${a}.attention.key_length`, u32(t.headDim)],
    [`${a}.attention.value_length`, u32(t.headDim)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(t.rmsNormEps)],
    [`${a}.rope.freq_base`, f32(t.ropeTheta)],
  ];
  if (a === "gemma2") {
    kv.push(
      ["gemma2.attn_logit_softcapping", f32(t.attnLogitSoftcap ?? 50)],
      ["gemma2.final_logit_softcapping", f32(t.finalLogitSoftcap ?? 30)],
      // PaliGemma 2 was trained with global attention in every layer (SPEC "Decisions"). libllama's Gemma 2
      // graph alternates sliding and global layers; a window wider than any context makes the sliding ones
      // global. (A sliding_window_pattern of 1 would trip an assertion in libllama's cache setup.)
      ["gemma2.attention.sliding_window", u32(GLOBAL_WINDOW)],
      ["paligemma.trained_sliding_window", u32(t.slidingWindow ?? 4096)],
    );
  }
  kv.push(...vocabularyMetadata(vocab), ...paligemmaMetadata(spec));
  kv.push(
    ["paligemma.loc_token_start", u32(vocab.locStart)],
    ["paligemma.loc_token_count", u32(LOC_COUNT)],
    ["paligemma.seg_token_start", u32(vocab.segStart)],
    ["paligemma.seg_token_count", u32(SEG_COUNT)],
    ["paligemma.prompt_layout", str("image,bos,prompt,newline")],
  );
  return kv;
}

function paligemmaMetadata(spec: PaliGemmaSpec): [string, GGUFValue][] {
  return [
    ["paligemma.version", { type: "u32", value: spec.version }],
    ["paligemma.image_size", { type: "u32", value: spec.vision.imageSize }],
    ["paligemma.patch_size", { type: "u32", value: spec.vision.patchSize }],
    ["paligemma.image_token_count", { type: "u32", value: spec.imageTokenCount }],
    ["paligemma.image_token_id", { type: "u32", value: spec.imageTokenId }],
    ["paligemma.source", { type: "str", value: spec.source ?? "" }],
    ["paligemma.converter", { type: "str", value: CONVERTER_VERSION }],
  ];
}

export function mmprojMetadata(spec: PaliGemmaSpec, name: string, type: MmprojType): [string, GGUFValue][] {
  const v = spec.vision;
  const u32 = (value: number): GGUFValue => ({ type: "u32", value });
  const half: GGUFValue = { type: "arr", itemType: "f32", value: Float32Array.of(0.5, 0.5, 0.5) };
  return [
    ["general.architecture", { type: "str", value: "clip" }],
    ["general.name", { type: "str", value: name }],
    ["general.file_type", u32(llamaFileType[type])],
    ["clip.has_vision_encoder", { type: "bool", value: true }],
    ["clip.projector_type", { type: "str", value: "paligemma" }],
    ["clip.vision.image_size", u32(v.imageSize)],
    ["clip.vision.patch_size", u32(v.patchSize)],
    ["clip.vision.embedding_length", u32(v.hiddenSize)],
    ["clip.vision.feed_forward_length", u32(v.intermediateSize)],
    ["clip.vision.block_count", u32(v.layers)],
    ["clip.vision.attention.head_count", u32(v.heads)],
    ["clip.vision.attention.layer_norm_epsilon", { type: "f32", value: v.layerNormEps }],
    ["clip.vision.projection_dim", u32(spec.projectionDim)],
    ["clip.vision.image_mean", half],
    ["clip.vision.image_std", half],
    ...paligemmaMetadata(spec),
  ];
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Removes temp files that killed conversions left beside `target` (their process is gone). */
async function removeStalePartials(target: string): Promise<void> {
  const dir = resolve(target, "..");
  const prefix = `${basename(target)}.partial-`;
  for (const f of await readdir(dir)) {
    if (!f.startsWith(prefix)) continue;
    const pid = Number(f.slice(prefix.length).split("-")[0]);
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch {}
    if (!alive) await rm(join(dir, f), { force: true });
  }
}

/** A checkpoint folder's config and its tensors, by part and canonical name (headers only). */
export async function readCheckpoint(input: string): Promise<{ spec: PaliGemmaSpec; parts: CheckpointParts }> {
  const inputStat = await stat(input).catch(() => undefined);
  if (!inputStat?.isDirectory())
    throw new IoError(`${input} is not a directory. Pass the folder of a Hugging Face PaliGemma checkpoint.`);
  let config: unknown;
  try {
    config = JSON.parse(await readFile(join(input, "config.json"), "utf8"));
  } catch (cause) {
    throw new ModelFormatError(`Could not read ${join(input, "config.json")}: ${(cause as Error).message}`, { cause });
  }
  const spec = parsePaliGemmaConfig(config);
  spec.source ??= basename(resolve(input));
  return { spec, parts: lookups(await loadTensors(input)) };
}

export async function convertCheckpoint(options: ConvertOptions): Promise<ConvertResult> {
  const input = expectNonEmptyString(options.input, "input");
  const outDir = expectNonEmptyString(options.outDir, "outDir");
  const type = optional(options.type, "f16" as ModelType, (v) => expectOneOf(v, "type", modelTypes));
  const requested = optional(options.mmprojType, "auto" as MmprojType | "auto", (v) =>
    expectOneOf(v, "mmprojType", [...mmprojTypes, "auto"] as const),
  );
  const mmprojType = requested === "auto" ? autoMmprojType(systemInfo().cpuFeatures) : requested;
  const force = optional(options.force, false, (v) => expectBoolean(v, "force"));
  const threads = optional(options.threads, 0, (v) => expectInteger(v, "threads", 0, 1024));
  const signal = expectAbortSignal(options.signal, "signal");

  const { spec, parts } = await readCheckpoint(input);
  const name = optional(options.name, basename(resolve(input)), (v) => expectNonEmptyString(v, "name"));
  if (/[/\\]/.test(name))
    throw new InvalidArgumentError(`Expected a file name without slashes for name but received ${JSON.stringify(name)}`);

  const vocab = await readVocabulary(input, spec.text.vocabSize, spec.imageTokenId);
  const textPlan = planText(spec, (k) => parts.text.get(k), type);
  const visionPlan = planVision(
    spec,
    (k) => parts.vision.get(k),
    (k) => parts.projector.get(k),
    mmprojType,
  );

  const outStat = await stat(outDir).catch(() => undefined);
  if (!outStat?.isDirectory()) throw new IoError(`Output folder ${outDir} does not exist; create it first.`);
  const modelPath = join(outDir, modelFileName(name, type));
  const mmprojPath = join(outDir, mmprojFileName(name, mmprojType));
  for (const p of [modelPath, mmprojPath]) {
    if (!force && (await exists(p)))
      throw new InvalidArgumentError(`${p} already exists; pass --force (force: true) to overwrite it`);
    await removeStalePartials(p);
  }

  const deltaFor = (t: PlannedTensor): MatrixDelta | undefined => {
    const c = canonicalName(t.source.name);
    return c && options.deltas?.get(`${c.part}:${c.key}`);
  };
  const total = [...textPlan, ...visionPlan].reduce((n, t) => n + t.source.byteLength, 0);
  let done = 0;
  const write = async (file: "model" | "mmproj", path: string, metadata: [string, GGUFValue][], plan: PlannedTensor[]) => {
    const tensors = plan.map((t) => ({
      name: t.name,
      type: t.type,
      shape: t.shape,
      data: tensorData(
        t,
        threads,
        signal,
        (bytes) => {
          done += bytes;
          options.onProgress?.({ file, tensor: t.name, done, total });
        },
        deltaFor(t),
      ),
    }));
    await writeGGUF(path, metadata, tensors, signal ? { signal } : {});
  };
  await write("model", modelPath, modelMetadata(spec, name, type, vocab), textPlan);
  await write("mmproj", mmprojPath, mmprojMetadata(spec, name, mmprojType), visionPlan);
  return { model: modelPath, mmproj: mmprojPath, spec };
}
