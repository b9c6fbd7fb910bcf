/** GGUF v3 value types and ggml tensor types: defined in @pali/base with the reader that uses them. */
export {
  GGML_MAX_DIMS,
  type GGMLTypeInfo,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  type GGUFArrayValue,
  type GGUFNumericArrays,
  type GGUFNumericTypeName,
  type GGUFScalarTypeName,
  type GGUFValue,
  type GGUFValueTypeName,
  ggmlTypeByName,
  ggmlTypes,
  numericArrayConstructors,
  scalarByteSize,
  valueTypeNames,
} from "@pali/base";
