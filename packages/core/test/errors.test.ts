import { describe, expect, it } from "vitest";
import { fromNativeError, InvalidArgumentError } from "../src/index.js";

describe("fromNativeError", () => {
  it("maps native status names to codes, keeping the cause", () => {
    const native = Object.assign(new Error("bad tensor shape"), { status: -2, statusName: "PALI_ERR_MODEL_FORMAT" });
    const error = fromNativeError(native, "Could not load m.gguf");
    expect(error.code).toBe("ERR_MODEL_FORMAT");
    expect(error.message).toBe("Could not load m.gguf: bad tensor shape");
    expect(error.cause).toBe(native);
    expect(fromNativeError(Object.assign(new Error("x"), { statusName: "PALI_ERR_IO" }), "c").code).toBe("ERR_IO");
    expect(fromNativeError(new Error("?"), "c").code).toBe("ERR_INTERNAL");
  });

  it("passes PaliErrors through unchanged", () => {
    const e = new InvalidArgumentError("x");
    expect(fromNativeError(e, "ctx")).toBe(e);
  });
});
