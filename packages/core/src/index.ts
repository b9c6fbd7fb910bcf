export * from "./errors.js";
export * from "./ggml-gguf.js";
export type * from "./native.js";
export { loadNative, nativeBinaryPath } from "./native.js";
export * from "./quantize.js";
export * from "./system.js";
export * from "./tensor.js";
export * from "./text-model.js";
export * from "./validate.js";
