export * from "./errors.js";
export * from "./files.js";
export * from "./gguf/keys.js";
export * from "./gguf/reader.js";
export * from "./gguf/types.js";
export * from "./model-files.js";
export * from "./validate.js";
