/** The GGUF v3 reader lives in @pali/core, whose model loaders validate every file with it before native code. */
export {
  type GGUFFile,
  type GGUFTensorInfo,
  parseGGUF,
  type ReadGGUFOptions,
  readGGUF,
  readTensorData,
} from "@pali/core";
