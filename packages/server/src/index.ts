export { createServer, type PaliServer } from "./app.js";
export { type ErrorResponse, ServerError, ServerErrorCode, toErrorResponse } from "./errors.js";
export { type LogLevel, type LogSink, logLevels } from "./log.js";
export type { ModelSource, ServerOptions } from "./options.js";
