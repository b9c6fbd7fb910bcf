export { DEFAULT_PIXEL_LIMIT, decodeImage, type ImageInput, preprocessImage, type RawImage, type RgbImage } from "./image.js";
export { type ModelFiles, openModelFiles } from "./model-files.js";
export type { GenerateRequest, LoadOptions, SamplingOptions, ScoreRequest } from "./options.js";
export {
  type FinishReason,
  type GenerateResult,
  type ModelInfo,
  PaliGemma,
  type ScoreResult,
  type StreamChunk,
  type Timings,
} from "./paligemma.js";
export type { DetectResult, SegmentInstance, SegmentMask, SegmentResult, TaskOptions, TextResult } from "./tasks.js";
