/**
 * Typed reads of GGUF metadata. getString/getNumber accept any numeric type (readers of our own keys);
 * the `require*` family checks the exact on-disk type that ggml's typed getters assert on, and a range.
 */
import { ModelFormatError } from "../errors.js";
import type { GGUFFile } from "./reader.js";
import type { GGUFValue, GGUFValueTypeName } from "./types.js";

export function getString(file: GGUFFile, key: string): string | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type !== "str") throw new ModelFormatError(`${file.path}: metadata ${key} should be a string but is ${v.type}`);
  return v.value;
}

export function getNumber(file: GGUFFile, key: string): number | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  if (v.type === "arr" || v.type === "str" || v.type === "bool") {
    throw new ModelFormatError(`${file.path}: metadata ${key} should be a number but is ${v.type}`);
  }
  return Number(v.value);
}

/** "u32", "arr[str]": how a value's type is named in messages. */
export function typeLabel(v: GGUFValue): string {
  return v.type === "arr" ? `arr[${v.itemType}]` : v.type;
}

/** A typed error that names the file, the key and the fix. */
export function keyError(file: GGUFFile, key: string, problem: string): ModelFormatError {
  return new ModelFormatError(
    `Invalid model file ${file.path}: metadata ${key} ${problem}; the file is damaged or was not made by pali convert (convert it again)`,
  );
}

function typed(file: GGUFFile, key: string, types: readonly GGUFValueTypeName[], required: boolean): GGUFValue | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) {
    if (required) throw keyError(file, key, "is missing");
    return undefined;
  }
  if (!types.includes(v.type)) throw keyError(file, key, `should be ${types.join(" or ")} but is ${typeLabel(v)}`);
  return v;
}

export interface IntegerKeyOptions {
  min?: number;
  max?: number;
  /** the on-disk types accepted (default u32 only, as libllama's uint32_t getter) */
  types?: readonly ("u8" | "i8" | "u16" | "i16" | "u32" | "i32")[];
}

export function requireU32(file: GGUFFile, key: string, options: IntegerKeyOptions = {}): number {
  return optionalU32(file, key, options, true) as number;
}

export function optionalU32(file: GGUFFile, key: string, options: IntegerKeyOptions = {}, required = false): number | undefined {
  const v = typed(file, key, options.types ?? ["u32"], required);
  if (v === undefined) return undefined;
  const n = v.value as number;
  const min = options.min ?? 0;
  const max = options.max ?? 0xffff_ffff;
  if (n < min || n > max) throw keyError(file, key, `is ${n}, expected ${min} to ${max}`);
  return n;
}

export function requireF32(file: GGUFFile, key: string, min: number, max: number): number {
  return optionalF32(file, key, min, max, true) as number;
}

/** A finite f32 in [min, max]. */
export function optionalF32(file: GGUFFile, key: string, min: number, max: number, required = false): number | undefined {
  const v = typed(file, key, ["f32"], required);
  if (v === undefined) return undefined;
  const x = v.value as number;
  if (!(Number.isFinite(x) && x >= min && x <= max)) throw keyError(file, key, `is ${x}, expected ${min} to ${max}`);
  return x;
}

export function requireString(file: GGUFFile, key: string): string {
  return typed(file, key, ["str"], true)?.value as string;
}

export function optionalString(file: GGUFFile, key: string): string | undefined {
  return typed(file, key, ["str"], false)?.value as string | undefined;
}

export function optionalBool(file: GGUFFile, key: string): boolean | undefined {
  return typed(file, key, ["bool"], false)?.value as boolean | undefined;
}
