/**
 * Tensor: a dtype, a shape and a typed-array view over memory that may belong to native code. Creating
 * one never copies; the view shares the buffer it was given.
 */
import { expectInteger, InvalidArgumentError } from "@pali/base";

export type DType = "f32" | "f16" | "bf16" | "i32" | "u8";

export interface TypedArrayOf {
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  i32: Int32Array;
  u8: Uint8Array;
}

const constructors = {
  f32: Float32Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  i32: Int32Array,
  u8: Uint8Array,
} as const;

export const dtypeByteSize: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, i32: 4, u8: 1 };

export class Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  /** Elements in row-major order (the last dimension varies fastest). */
  readonly data: TypedArrayOf[D];

  private constructor(dtype: D, shape: readonly number[], data: TypedArrayOf[D]) {
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = data;
  }

  get size(): number {
    return this.data.length;
  }

  get byteLength(): number {
    return this.data.byteLength;
  }

  /** Wraps existing memory: a typed array of the dtype's kind, or an ArrayBuffer with an offset. */
  static from<D extends DType>(
    dtype: D,
    shape: readonly number[],
    source: TypedArrayOf[D] | ArrayBufferLike,
    byteOffset = 0,
  ): Tensor<D> {
    const count = elementCount(shape);
    const Ctor = constructors[dtype];
    let data: TypedArrayOf[D];
    if (ArrayBuffer.isView(source)) {
      if (!(source instanceof Ctor)) {
        throw new InvalidArgumentError(`Expected ${Ctor.name} for a ${dtype} tensor but received ${source.constructor.name}`);
      }
      data = source as TypedArrayOf[D];
    } else {
      expectInteger(byteOffset, "byteOffset", 0);
      if (byteOffset % dtypeByteSize[dtype] !== 0) {
        throw new InvalidArgumentError(`Expected byteOffset aligned to ${dtypeByteSize[dtype]} bytes but received ${byteOffset}`);
      }
      if (byteOffset + count * dtypeByteSize[dtype] > source.byteLength) {
        throw new InvalidArgumentError(
          `A ${dtype} tensor of shape [${shape.join(", ")}] needs ${count * dtypeByteSize[dtype]} bytes from offset ${byteOffset} but the buffer has ${source.byteLength}`,
        );
      }
      data = new Ctor(source as ArrayBuffer, byteOffset, count) as TypedArrayOf[D];
    }
    if (data.length !== count) {
      throw new InvalidArgumentError(
        `A tensor of shape [${shape.join(", ")}] has ${count} elements but the data has ${data.length}`,
      );
    }
    return new Tensor(dtype, shape, data);
  }

  /** A zero-filled tensor in fresh memory. */
  static zeros<D extends DType>(dtype: D, shape: readonly number[]): Tensor<D> {
    const Ctor = constructors[dtype];
    return new Tensor(dtype, shape, new Ctor(elementCount(shape)) as TypedArrayOf[D]);
  }

  /** The same memory seen with another shape of the same element count. */
  reshape(shape: readonly number[]): Tensor<D> {
    const count = elementCount(shape);
    if (count !== this.size) {
      throw new InvalidArgumentError(
        `Cannot reshape [${this.shape.join(", ")}] (${this.size} elements) to [${shape.join(", ")}] (${count})`,
      );
    }
    return new Tensor(this.dtype, shape, this.data);
  }
}

function elementCount(shape: readonly number[]): number {
  if (!Array.isArray(shape) || shape.length === 0 || shape.length > 8) {
    throw new InvalidArgumentError(`Expected a shape of 1 to 8 dimensions but received ${JSON.stringify(shape)}`);
  }
  let count = 1;
  for (const [i, dim] of shape.entries()) {
    expectInteger(dim, `shape[${i}]`, 0);
    count *= dim;
  }
  if (!Number.isSafeInteger(count)) throw new InvalidArgumentError(`Shape [${shape.join(", ")}] has too many elements`);
  return count;
}
