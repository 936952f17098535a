// Host-memory wrappers for the kernel tests: upload, run one kernel, download.
#include "src/cuda/cuda_testing.h"

#include "quant/quantize.h"
#include "src/cuda/cuda_buffers.cuh"
#include "src/cuda/cuda_check.h"
#include "src/cuda/cuda_kernels.cuh"

namespace qrun::cuda_testing {

namespace {

using cuda::check;
using cuda::DeviceBuffer;

DeviceBuffer upload(const void* p, uint64_t bytes) {
  DeviceBuffer b(bytes);
  check(cudaMemcpy(b.get(), p, bytes, cudaMemcpyHostToDevice), "test upload");
  return b;
}

void download(void* p, const DeviceBuffer& b, uint64_t bytes) {
  check(cudaDeviceSynchronize(), "test kernel");
  check(cudaMemcpy(p, b.get(), bytes, cudaMemcpyDeviceToHost), "test download");
}

}  // namespace

bool gpu_available(std::string* why) {
  try {
    cuda::require_device();
    return true;
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
}

void quantize_activations(const float* x, int64_t n, int64_t cols, BlockQ8A* out) {
  const uint64_t xq_bytes = uint64_t(n * q8a_blocks(cols)) * sizeof(BlockQ8A);
  DeviceBuffer dx = upload(x, uint64_t(n * cols) * sizeof(float)), dq(xq_bytes);
  cuda::quantize_activations(dx.get<float>(), n, cols, dq.get<BlockQ8A>(), nullptr);
  download(out, dq, xq_bytes);
}

void matmul(DType t, const void* w, int64_t rows, int64_t cols, int64_t n, const float* x, float* y) {
  DeviceBuffer dw = upload(w, uint64_t(rows * dtype_row_bytes(t, cols)));
  DeviceBuffer dx = upload(x, uint64_t(n * cols) * sizeof(float));
  DeviceBuffer dq(uint64_t(n * q8a_blocks(cols)) * sizeof(BlockQ8A)), dy(uint64_t(n * rows) * sizeof(float));
  if (dtype_is_quantized(t)) cuda::quantize_activations(dx.get<float>(), n, cols, dq.get<BlockQ8A>(), nullptr);
  cuda::matmul(t, dw.get(), rows, cols, n, dx.get<float>(), dq.get<BlockQ8A>(), dy.get<float>(), rows, false, nullptr);
  download(y, dy, dy.bytes());
}

void rmsnorm(float* out, const float* x, const float* weight, int64_t n, int64_t dim, float eps) {
  DeviceBuffer dx = upload(x, uint64_t(n * dim) * sizeof(float)), dw = upload(weight, uint64_t(dim) * sizeof(float));
  DeviceBuffer dy(dx.bytes());
  cuda::rmsnorm(dy.get<float>(), dx.get<float>(), dw.get<float>(), n, dim, eps, nullptr);
  download(out, dy, dy.bytes());
}

void swiglu(float* gate, const float* up, int64_t count) {
  DeviceBuffer dg = upload(gate, uint64_t(count) * sizeof(float)), du = upload(up, uint64_t(count) * sizeof(float));
  cuda::swiglu(dg.get<float>(), du.get<float>(), count, nullptr);
  download(gate, dg, dg.bytes());
}

void rope(float* x, int n_heads, int head_dim, int pos, const std::vector<float>& inv_freq) {
  // One token whose keys are the same heads: rope_and_store rotates both, so q and k
  // must agree, and the cache rows hold k in f16.
  const uint64_t bytes = uint64_t(n_heads) * head_dim * sizeof(float);
  DeviceBuffer dq = upload(x, bytes), dk = upload(x, bytes), dv = upload(x, bytes);
  DeviceBuffer df = upload(inv_freq.data(), inv_freq.size() * sizeof(float));
  DeviceBuffer cache(uint64_t(pos + 1) * n_heads * head_dim * sizeof(__half) * 2);
  __half* kc = cache.get<__half>();
  cuda::rope_and_store(dq.get<float>(), dk.get<float>(), dv.get<float>(), nullptr, nullptr, nullptr, 1, n_heads,
                       n_heads, head_dim, pos, df.get<float>(), kc, kc + size_t(pos + 1) * n_heads * head_dim,
                       nullptr);
  std::vector<float> k(size_t(n_heads) * head_dim);
  download(x, dq, bytes);
  download(k.data(), dk, bytes);
  for (size_t i = 0; i < k.size(); ++i)
    if (k[i] != x[i]) throw Error("CUDA rope: q and k rotated differently");
}

void attention(const float* q, const uint16_t* k, const uint16_t* v, int n_heads, int n_kv, int head_dim, int t_end,
               int window, float* out) {
  const uint64_t q_bytes = uint64_t(n_heads) * head_dim * sizeof(float);
  const uint64_t kv_bytes = uint64_t(t_end) * n_kv * head_dim * sizeof(uint16_t);
  DeviceBuffer dq = upload(q, q_bytes), dk = upload(k, kv_bytes), dv = upload(v, kv_bytes), dout(q_bytes);
  cuda::attention(dq.get<float>(), dk.get<__half>(), dv.get<__half>(), dout.get<float>(), 1, n_heads, n_kv, head_dim,
                  t_end - 1, window, nullptr);
  download(out, dout, q_bytes);
}

}  // namespace qrun::cuda_testing
