export { type DecoderHparams, validateDecoder } from "./decoder.js";
export { type LoraHparams, validateLora } from "./lora.js";
export { MASK_DECODER_ARCH, type MaskDecoderHparams, validateMaskDecoderFile } from "./mask-decoder.js";
export { type MmprojHparams, validateMmproj } from "./mmproj.js";
