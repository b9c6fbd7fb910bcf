/** Shared lifetime of objects that own a native handle: idempotent dispose, asyncDispose, a finalizer as a safety net. */
import { DisposedError } from "@pali/base";

interface Disposable {
  dispose(): void;
}

const registry = new FinalizationRegistry<Disposable>((handle) => handle.dispose());

export abstract class NativeHandle<T extends Disposable> {
  #handle: T | undefined;
  readonly #what: string;

  protected constructor(handle: T, what: string) {
    this.#handle = handle;
    this.#what = what;
    registry.register(this, handle, this);
  }

  get disposed(): boolean {
    return this.#handle === undefined;
  }

  dispose(): void {
    if (!this.#handle) return;
    registry.unregister(this);
    this.#handle.dispose();
    this.#handle = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  /** The native handle; throws ERR_DISPOSED after dispose(). */
  protected get native(): T {
    if (!this.#handle) throw new DisposedError(`This ${this.#what}`);
    return this.#handle;
  }
}
