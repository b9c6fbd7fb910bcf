/** Native status codes become PaliErrors here, in one function; the error classes live in @pali/base. */
import { ErrorCode, PaliError } from "@pali/base";

/** Native status names (pali.h `enum pali_status`) and the codes they become. */
const nativeStatusCodes: Record<string, ErrorCode> = {
  PALI_ERR_INVALID_ARGUMENT: ErrorCode.InvalidArgument,
  PALI_ERR_MODEL_FORMAT: ErrorCode.ModelFormat,
  PALI_ERR_UNSUPPORTED_MODEL: ErrorCode.UnsupportedModel,
  PALI_ERR_BACKEND: ErrorCode.Backend,
  PALI_ERR_ABORTED: ErrorCode.Aborted,
  PALI_ERR_OUT_OF_MEMORY: ErrorCode.OutOfMemory,
  PALI_ERR_IO: ErrorCode.Io,
  PALI_ERR_CONTEXT_OVERFLOW: ErrorCode.ContextOverflow,
  PALI_ERR_DISPOSED: ErrorCode.Disposed,
};

/** The one place where an error thrown by the addon becomes a PaliError. */
export function fromNativeError(error: unknown, context: string): PaliError {
  if (error instanceof PaliError) return error;
  const statusName = typeof error === "object" && error !== null && "statusName" in error ? String(error.statusName) : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const code = (statusName && nativeStatusCodes[statusName]) || ErrorCode.Internal;
  return new PaliError(code, `${context}: ${message}`, { cause: error });
}

// The classes are re-exported for core's own modules that import them from here.
export * from "@pali/base";
