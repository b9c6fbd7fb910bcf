export * from "./convert.js";
export * from "./hf-config.js";
export * from "./lora.js";
export * from "./npz.js";
export * from "./safetensors.js";
export * from "./seg-vae.js";
export * from "./tensor-plan.js";
export * from "./vocab.js";
