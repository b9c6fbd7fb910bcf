/**
 * The validation vocabulary. Options are checked once, at the public boundary, and every message has
 * the same shape: "Expected positive integer for maxTokens but received -1".
 */
import { AbortError, InvalidArgumentError } from "./errors.js";

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return `array of length ${value.length}`;
  return typeof value === "object" ? (value.constructor?.name ?? "object") : typeof value;
}

export function invalid(expected: string, name: string, value: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`Expected ${expected} for ${name} but received ${describe(value)}`);
}

export function expectString(value: unknown, name: string): string {
  if (typeof value !== "string") throw invalid("string", name, value);
  return value;
}

export function expectNonEmptyString(value: unknown, name: string): string {
  if (typeof value !== "string" || value.length === 0) throw invalid("non-empty string", name, value);
  return value;
}

export function expectBoolean(value: unknown, name: string): boolean {
  if (typeof value !== "boolean") throw invalid("boolean", name, value);
  return value;
}

export function expectFiniteNumber(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) throw invalid("finite number", name, value);
  return value;
}

export function expectNumberInRange(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw invalid(`number between ${min} and ${max}`, name, value);
  }
  return value;
}

export function expectInteger(
  value: unknown,
  name: string,
  min = Number.MIN_SAFE_INTEGER,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const range =
      min === Number.MIN_SAFE_INTEGER && max === Number.MAX_SAFE_INTEGER
        ? "integer"
        : max === Number.MAX_SAFE_INTEGER
          ? `integer >= ${min}`
          : `integer between ${min} and ${max}`;
    throw invalid(range, name, value);
  }
  return value;
}

export function expectPositiveInteger(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > Number.MAX_SAFE_INTEGER) {
    throw invalid("positive integer", name, value);
  }
  return value;
}

export function expectOneOf<const T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw invalid(`one of ${allowed.join(", ")}`, name, value);
  }
  return value as T;
}

export function expectObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid("object", name, value);
  return value as Record<string, unknown>;
}

/** Returns `fallback` when `value` is undefined, otherwise what `check` returns. */
export function optional<T>(value: unknown, fallback: T, check: (value: unknown) => T): T {
  return value === undefined ? fallback : check(value);
}

export function expectAbortSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw invalid("AbortSignal", name, value);
  return value;
}

/** Throws an AbortError (ERR_ABORTED) carrying the signal's reason when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError("The operation was aborted", { cause: signal.reason });
}
