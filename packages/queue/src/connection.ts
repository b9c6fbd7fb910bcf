/** One Redis connection per queue object, checked before use: an unreachable server is a typed error, not endless retries. */
import { PaliError } from "@pali/core";
import { Redis } from "ioredis";

export const DEFAULT_QUEUE = "pali-label";

export function redisError(url: string, cause: unknown): PaliError {
  return new PaliError(
    "ERR_IO",
    `Could not reach Redis at ${url}: ${(cause as Error).message || String(cause)}. Start redis-server there, or pass --redis redis://HOST:PORT`,
    { cause },
  );
}

/** A connected client (BullMQ needs maxRetriesPerRequest: null for blocking commands). */
export async function connectRedis(url: string, timeoutMs = 5000): Promise<Redis> {
  if (!/^rediss?:\/\//.test(url)) {
    throw new PaliError(
      "ERR_INVALID_ARGUMENT",
      `Expected a redis:// or rediss:// URL for --redis but received ${JSON.stringify(url)}`,
    );
  }
  const client = new Redis(url, {
    maxRetriesPerRequest: null,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    enableOfflineQueue: true,
  });
  // ioredis reports reconnection trouble as events; an unhandled 'error' event would end the process.
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (cause) {
    client.disconnect();
    throw redisError(url, cause);
  }
}
