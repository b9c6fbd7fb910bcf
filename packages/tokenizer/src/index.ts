export * from "./prompt.js";
export { PieceType, parseSentencePieceModel, type SentencePieceModel } from "./sentencepiece-model.js";
export { type DecodeOptions, type EncodeOptions, type StreamDecoder, Tokenizer } from "./tokenizer.js";
