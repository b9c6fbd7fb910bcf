/**
 * LoRA adapters on one loaded base model: loaded once (decoder part into libllama, vision part into pali's
 * SigLIP graph), then chosen per request. By default every request gets every loaded adapter at its load
 * scale; `adapters: []` asks the base model, `adapters: ["name"]` or `[{ name, scale }]` a selection.
 */
import { basename } from "node:path";
import {
  type AdapterUse,
  adapterKey,
  expectFiniteNumber,
  expectNonEmptyString,
  expectObject,
  findVisionLoraBeside,
  InvalidArgumentError,
  optional,
  type TextModel,
  type VisionModel,
} from "@pali/core";

export interface AdapterOption {
  /** the decoder adapter, `lora-<name>-f32.gguf` (pali convert --lora); `mmproj-lora-<name>-f32.gguf` beside it is the vision part */
  path: string;
  /** default 1 */
  scale?: number;
  /** how requests choose it; default the file's <name> */
  name?: string;
}

/** A request's choice: adapter names (at their load scales) or names with scales. */
export type AdapterChoice = string | { name: string; scale?: number };

export interface LoadedAdapter {
  name: string;
  path: string;
  /** the vision part, when the adapter reaches the tower or projector */
  visionPath: string | undefined;
  scale: number;
}

/** What one request applies: to the decoder, to the image encoder, and a key for both. */
export interface AdapterSelection {
  text: readonly AdapterUse[];
  vision: readonly AdapterUse[];
  /** equal keys: the same image embeddings and the same decoder */
  key: string;
}

interface Entry extends LoadedAdapter {
  textIndex: number;
  visionIndex: number | undefined;
}

export function validateAdapterOptions(value: unknown): AdapterOption[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidArgumentError("Expected an array of { path, scale?, name? } for adapters");
  const seen = new Set<string>();
  return value.map((v, i) => {
    const o = expectObject(v, `adapters[${i}]`) as unknown as AdapterOption;
    const path = expectNonEmptyString(o.path, `adapters[${i}].path`);
    const name = optional(o.name, defaultName(path), (n) => expectNonEmptyString(n, `adapters[${i}].name`));
    if (seen.has(name)) throw new InvalidArgumentError(`Two adapters are named ${JSON.stringify(name)}; give one another name`);
    seen.add(name);
    return { path, name, scale: optional(o.scale, 1, (s) => expectFiniteNumber(s, `adapters[${i}].scale`)) };
  });
}

function defaultName(path: string): string {
  return basename(path)
    .replace(/\.gguf$/i, "")
    .replace(/^lora-/, "")
    .replace(/-(f32|f16|bf16)$/i, "");
}

export class Adapters {
  readonly #entries: Entry[];

  private constructor(entries: Entry[]) {
    this.#entries = entries;
  }

  /** Loads each adapter into the decoder and, when it has a vision part, into the image encoder. */
  static async load(options: AdapterOption[], text: TextModel, vision: VisionModel): Promise<Adapters> {
    const entries: Entry[] = [];
    for (const o of options) {
      const visionPath = await findVisionLoraBeside(o.path);
      const textIndex = await text.addAdapter(o.path);
      const visionIndex = visionPath === undefined ? undefined : await vision.addAdapter(visionPath);
      entries.push({ name: o.name as string, path: o.path, visionPath, scale: o.scale ?? 1, textIndex, visionIndex });
    }
    return new Adapters(entries);
  }

  get loaded(): LoadedAdapter[] {
    return this.#entries.map(({ name, path, visionPath, scale }) => ({ name, path, visionPath, scale }));
  }

  /** The adapters a request applies: all loaded ones by default. */
  select(choice: readonly AdapterChoice[] | undefined): AdapterSelection {
    const picked =
      choice === undefined
        ? this.#entries.map((e) => ({ entry: e, scale: e.scale }))
        : choice.map((c) => {
            const name = typeof c === "string" ? c : c?.name;
            const entry = this.#entries.find((e) => e.name === name);
            if (entry === undefined) {
              const known = this.#entries.map((e) => e.name);
              throw new InvalidArgumentError(
                `No adapter named ${JSON.stringify(name)} is loaded${known.length ? ` (loaded: ${known.join(", ")})` : "; load it with PaliGemma.load({ adapters: [{ path }] })"}`,
              );
            }
            const scale =
              typeof c === "string" || c.scale === undefined ? entry.scale : expectFiniteNumber(c.scale, "adapter scale");
            return { entry, scale };
          });
    const text = picked.map((p) => ({ index: p.entry.textIndex, scale: p.scale }));
    const vision = picked
      .filter((p) => p.entry.visionIndex !== undefined)
      .map((p) => ({ index: p.entry.visionIndex as number, scale: p.scale }));
    return { text, vision, key: `${adapterKey(text)}|${adapterKey(vision)}` };
  }
}

/** A request's `adapters` option, checked for shape (names are checked by Adapters.select). */
export function validateAdapterChoice(value: unknown): AdapterChoice[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value))
    throw new InvalidArgumentError("Expected an array of adapter names (or { name, scale }) for adapters");
  return value.map((c, i) => {
    if (typeof c === "string") return expectNonEmptyString(c, `adapters[${i}]`);
    const o = expectObject(c, `adapters[${i}]`) as { name?: unknown; scale?: unknown };
    const name = expectNonEmptyString(o.name, `adapters[${i}].name`);
    return o.scale === undefined ? { name } : { name, scale: expectFiniteNumber(o.scale, `adapters[${i}].scale`) };
  });
}
