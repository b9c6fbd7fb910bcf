// pali's matrix product for the text decoder's prefill, as a ggml "accelerator" backend (see gemm_backend.cpp).
#pragma once

namespace pali {

// Registers the backend with ggml once, where pali's product runs on this CPU and PALI_TEXT_GEMM is not "ggml".
// libllama then adds it beside the CPU backend of every context, and its scheduler hands it the matrix products
// it takes. Call after the CPU backend is loaded and before models are.
void register_gemm_backend();

// Whether it was registered (a CPU it runs on, not turned off).
bool gemm_backend_registered();

} // namespace pali
