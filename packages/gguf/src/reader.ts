/** The GGUF v3 reader lives in @pali/base, beside the errors it throws, so that @pali/core's loaders and this package share it. */
export {
  type GGUFFile,
  type GGUFTensorInfo,
  parseGGUF,
  type ReadGGUFOptions,
  readGGUF,
  readTensorData,
} from "@pali/base";
