/** How many requests one loaded model decodes together by default. */
import { freemem } from "node:os";
import { systemInfo } from "@pali/core";
import { type GGUFFile, getNumber, getString } from "@pali/gguf";

const GIB = 1024 ** 3;

/** KV cache bytes one position of the decoder takes (keys and values of every layer). */
export function kvBytesPerPosition(model: GGUFFile, kvF32: boolean): number {
  const arch = getString(model, "general.architecture") ?? "gemma";
  const layers = getNumber(model, `${arch}.block_count`) ?? 0;
  const heads = getNumber(model, `${arch}.attention.head_count_kv`) ?? getNumber(model, `${arch}.attention.head_count`) ?? 0;
  const embd = getNumber(model, `${arch}.embedding_length`) ?? 0;
  const headCount = getNumber(model, `${arch}.attention.head_count`) ?? 1;
  const keyLength = getNumber(model, `${arch}.attention.key_length`) ?? embd / headCount;
  const valueLength = getNumber(model, `${arch}.attention.value_length`) ?? keyLength;
  return layers * heads * (keyLength + valueLength) * (kvF32 ? 4 : 2);
}

/**
 * "auto": 8 sequences on a GPU, 4 on the CPU (decode steps read the weights once for all of them, so
 * throughput grows with the batch until compute binds), fewer when their KV caches would take more than
 * 1 GiB or a quarter of free memory.
 */
export function defaultParallel(model: GGUFFile, o: { gpu: boolean; contextSize: number; kvF32: boolean }): number {
  const onGpu = o.gpu && systemInfo().devices.some((d) => d.type === "gpu");
  const wanted = onGpu ? 8 : 4;
  const perSequence = kvBytesPerPosition(model, o.kvF32) * o.contextSize;
  const budget = Math.min(GIB, freemem() / 4);
  return Math.max(1, Math.min(wanted, Math.floor(budget / Math.max(1, perSequence))));
}
