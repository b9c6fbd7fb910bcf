/**
 * Every error response is `{ error: { code, message } }`. SDK errors keep their PaliError code; the
 * protocol-level failures that only a server has (auth, queue, timeouts, sizes) get the codes below.
 */
import { ErrorCode, PaliError } from "@pali/core";

export const ServerErrorCode = {
  Unauthorized: "ERR_UNAUTHORIZED",
  NotFound: "ERR_NOT_FOUND",
  PayloadTooLarge: "ERR_PAYLOAD_TOO_LARGE",
  UnsupportedMediaType: "ERR_UNSUPPORTED_MEDIA_TYPE",
  QueueFull: "ERR_QUEUE_FULL",
  ModelLoading: "ERR_MODEL_LOADING",
  ShuttingDown: "ERR_SHUTTING_DOWN",
  Timeout: "ERR_TIMEOUT",
  RemoteImagesDisabled: "ERR_REMOTE_IMAGES_DISABLED",
  RemoteImage: "ERR_REMOTE_IMAGE",
} as const;

export type ServerErrorCode = (typeof ServerErrorCode)[keyof typeof ServerErrorCode];

/** An HTTP failure with its status; `headers` go out with the response (Retry-After, WWW-Authenticate). */
export class ServerError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    message: string,
    options: { headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.status = status;
    this.code = code;
    this.headers = options.headers ?? {};
  }

  override get name(): string {
    return "ServerError";
  }
}

/** Statuses of the SDK's codes; anything else is a 500. */
const statusOfCode: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.ContextOverflow]: 400,
  // the loaded model cannot do what was asked (segment without a mask decoder)
  [ErrorCode.UnsupportedModel]: 400,
  [ErrorCode.ImageDecode]: 415,
  // the client went away; nobody reads this status, the log line does
  [ErrorCode.Aborted]: 499,
  [ErrorCode.Disposed]: 503,
};

/** Fastify's and @fastify/multipart's error codes that are the client's doing. */
const fastifyCodes: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, ServerErrorCode.PayloadTooLarge],
  FST_REQ_FILE_TOO_LARGE: [413, ServerErrorCode.PayloadTooLarge],
  FST_PARTS_LIMIT: [413, ServerErrorCode.PayloadTooLarge],
  FST_FILES_LIMIT: [413, ServerErrorCode.PayloadTooLarge],
  FST_FIELDS_LIMIT: [413, ServerErrorCode.PayloadTooLarge],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, ServerErrorCode.UnsupportedMediaType],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, ServerErrorCode.UnsupportedMediaType],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, ErrorCode.InvalidArgument],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, ErrorCode.InvalidArgument],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, ErrorCode.InvalidArgument],
  FST_PROTO_VIOLATION: [400, ErrorCode.InvalidArgument],
};

/** sharp's and the SDK's wording for an image over the pixel limit: a size problem, not a format one. */
const pixelLimitMessage = /pixel limit|more than the limit/i;

export interface ErrorResponse {
  status: number;
  code: string;
  message: string;
  headers: Record<string, string>;
}

/** Any thrown value → the status, code and message a client gets. */
export function toErrorResponse(error: unknown): ErrorResponse {
  if (error instanceof ServerError)
    return { status: error.status, code: error.code, message: error.message, headers: error.headers };
  if (error instanceof PaliError) {
    const status =
      error.code === ErrorCode.ImageDecode && pixelLimitMessage.test(error.message) ? 413 : (statusOfCode[error.code] ?? 500);
    return { status, code: error.code, message: error.message, headers: {} };
  }
  const e = error as { code?: unknown; statusCode?: unknown; validation?: unknown; message?: unknown };
  const message = typeof e?.message === "string" ? e.message : String(error);
  if (e?.validation) return { status: 400, code: ErrorCode.InvalidArgument, message, headers: {} };
  const known = typeof e?.code === "string" ? fastifyCodes[e.code] : undefined;
  if (known) return { status: known[0], code: known[1], message, headers: {} };
  // JSON syntax errors and other parser failures carry a 4xx statusCode
  if (typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500)
    return { status: e.statusCode, code: ErrorCode.InvalidArgument, message, headers: {} };
  return { status: 500, code: ErrorCode.Internal, message, headers: {} };
}
