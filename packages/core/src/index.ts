// Errors, validation, file reads and the GGUF reader live in @pali/base (no native code); re-exported here.
export * from "@pali/base";
export * from "./adapters.js";
export * from "./context.js";
export { fromNativeError } from "./errors.js";
export * from "./ggml-gguf.js";
export * from "./handle.js";
export * from "./mask-decoder.js";
export * from "./model-format/index.js";
export type * from "./native.js";
export {
  defaultGpuPreference,
  loadNative,
  nativeBinaryPath,
  nativeCandidates,
  nativeVariantInfo,
  parseGpuPreference,
} from "./native.js";
export { currentPlatform, nativeVariants, variantsFor } from "./native-variants.js";
export * from "./pixels.js";
export * from "./quantize.js";
export * from "./scheduler.js";
export * from "./system.js";
export * from "./tensor.js";
export * from "./text-model.js";
export * from "./vision-model.js";
