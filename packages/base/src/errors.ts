/**
 * Every error pali hands to a user is a PaliError with a stable `code`, a message that says what to do,
 * and the underlying `cause` where there is one.
 */
export const ErrorCode = {
  InvalidArgument: "ERR_INVALID_ARGUMENT",
  ModelFormat: "ERR_MODEL_FORMAT",
  UnsupportedModel: "ERR_UNSUPPORTED_MODEL",
  ImageDecode: "ERR_IMAGE_DECODE",
  ContextOverflow: "ERR_CONTEXT_OVERFLOW",
  Aborted: "ERR_ABORTED",
  Disposed: "ERR_DISPOSED",
  Backend: "ERR_BACKEND",
  NativeBinary: "ERR_NATIVE_BINARY",
  OutOfMemory: "ERR_OUT_OF_MEMORY",
  Io: "ERR_IO",
  /** a gated or private Hugging Face repo that needs a token, or a token without access */
  Auth: "ERR_AUTH",
  Internal: "ERR_INTERNAL",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class PaliError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

export class InvalidArgumentError extends PaliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.InvalidArgument, message, options);
  }
}

export class ModelFormatError extends PaliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.ModelFormat, message, options);
  }
}

export class UnsupportedModelError extends PaliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.UnsupportedModel, message, options);
  }
}

export class ImageDecodeError extends PaliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.ImageDecode, message, options);
  }
}

export class ContextOverflowError extends PaliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.ContextOverflow, message, options);
  }
}

export class AbortError extends PaliError {
  constructor(message = "The operation was aborted", options?: { cause?: unknown }) {
    super(ErrorCode.Aborted, message, options);
  }
}

export class DisposedError extends PaliError {
  constructor(what: string) {
    super(ErrorCode.Disposed, `${what} was disposed; create a new one to continue`);
  }
}

export class NativeBinaryError extends PaliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.NativeBinary, message, options);
  }
}

export class IoError extends PaliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Io, message, options);
  }
}
