/** The hub's own error class, and how a disk that filled up is told apart from other write failures. */
import { ErrorCode, IoError, PaliError } from "@pali/core";

/** ERR_AUTH: a gated or private repo without a token, or a token that has no access to it. */
export class HubAuthError extends PaliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Auth, message, options);
  }
}

/** The errno code of an error or of any error in its cause chain (`ENOSPC`, `ECONNREFUSED`, ...). */
export function errnoCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

export function isDiskFull(error: unknown): boolean {
  const code = errnoCode(error);
  return code === "ENOSPC" || code === "EDQUOT";
}

/** A write failure as ERR_IO, saying "the disk is full" when that is what happened. */
export function writeError(path: string, error: unknown, after: string): PaliError {
  if (isDiskFull(error))
    return new IoError(
      `The disk is full while writing ${path}. Free some space (or set PALI_CACHE to a larger disk), then ${after}`,
      {
        cause: error,
      },
    );
  if (error instanceof PaliError) return error;
  return new IoError(`Could not write ${path}: ${(error as Error).message}. Then ${after}`, { cause: error });
}
