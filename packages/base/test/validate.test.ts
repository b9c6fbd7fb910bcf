import { describe, expect, it } from "vitest";
import {
  AbortError,
  expectAbortSignal,
  expectFiniteNumber,
  expectInteger,
  expectNonEmptyString,
  expectNumberInRange,
  expectObject,
  expectOneOf,
  expectPositiveInteger,
  InvalidArgumentError,
  optional,
  PaliError,
  throwIfAborted,
} from "../src/index.js";

describe("validation vocabulary", () => {
  it("says what it expected, for which option, and what it got", () => {
    expect(() => expectPositiveInteger(-1, "maxTokens")).toThrow("Expected positive integer for maxTokens but received -1");
    expect(() => expectPositiveInteger(1.5, "maxTokens")).toThrow("but received 1.5");
    expect(() => expectFiniteNumber(Number.NaN, "temperature")).toThrow(
      "Expected finite number for temperature but received NaN",
    );
    expect(() => expectNumberInRange(1.5, "topP", 0, 1)).toThrow("Expected number between 0 and 1 for topP but received 1.5");
    expect(() => expectInteger(-2, "gpuLayers", -1)).toThrow("Expected integer >= -1 for gpuLayers but received -2");
    expect(() => expectInteger(9, "n", 0, 8)).toThrow("Expected integer between 0 and 8 for n but received 9");
    expect(() => expectNonEmptyString("", "prompt")).toThrow('Expected non-empty string for prompt but received ""');
    expect(() => expectOneOf("q3", "type", ["q8_0", "f16"])).toThrow('Expected one of q8_0, f16 for type but received "q3"');
    expect(() => expectObject([1, 2], "options")).toThrow("Expected object for options but received array of length 2");
    expect(() => expectObject(null, "options")).toThrow("but received null");
    expect(() => expectAbortSignal({}, "signal")).toThrow("Expected AbortSignal for signal but received Object");
  });

  it("returns the value when it is valid", () => {
    expect(expectPositiveInteger(3, "n")).toBe(3);
    expect(expectOneOf("f16", "type", ["q8_0", "f16"])).toBe("f16");
    expect(optional(undefined, 7, (v) => expectPositiveInteger(v, "n"))).toBe(7);
    expect(optional(2, 7, (v) => expectPositiveInteger(v, "n"))).toBe(2);
    expect(() => optional("x", 7, (v) => expectPositiveInteger(v, "n"))).toThrow(InvalidArgumentError);
  });

  it("gives every failure the ERR_INVALID_ARGUMENT code", () => {
    try {
      expectPositiveInteger(0, "beams");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PaliError);
      expect((e as PaliError).code).toBe("ERR_INVALID_ARGUMENT");
      expect((e as PaliError).name).toBe("InvalidArgumentError");
    }
  });

  it("turns a fired AbortSignal into ERR_ABORTED with its reason", () => {
    const controller = new AbortController();
    throwIfAborted(controller.signal);
    controller.abort(new Error("user pressed Ctrl-C"));
    try {
      throwIfAborted(controller.signal);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AbortError);
      expect((e as AbortError).code).toBe("ERR_ABORTED");
      expect(((e as AbortError).cause as Error).message).toBe("user pressed Ctrl-C");
    }
  });
});
