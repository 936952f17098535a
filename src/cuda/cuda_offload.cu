// GpuOffload on CUDA: the offloaded layers' weights and KV cache live on the device,
// and run_layers is the CPU layer loop of src/runtime/forward.cpp with each step replaced by
// its kernel. The residual stream goes up once and comes back once per call.
#include <algorithm>
#include <vector>

#include "src/cuda/cuda_buffers.cuh"
#include "src/cuda/cuda_check.h"
#include "src/cuda/cuda_kernels.cuh"
#include "src/cuda/gpu_offload_size.h"
#include "src/runtime/gpu_offload.h"
#include "src/runtime/rope.h"

namespace qrun {

namespace {

using cuda::check;
using cuda::DeviceBuffer;
using cuda::DeviceWeight;

// Left free for the CUDA context's own allocations (kernels, printf, stacks) that
// cudaMemGetInfo does not yet show.
constexpr uint64_t kReserveBytes = 128ull << 20;

class CudaOffload final : public GpuOffload {
 public:
  CudaOffload(const ModelFile& file, const ModelWeights& weights, GpuLayerRange range, int context, int batch);
  ~CudaOffload() override {
    if (stream_) cudaStreamDestroy(stream_);
  }
  void run_layers(float* x, int n, int pos0) override;
  std::string device_name() const override { return name_; }

 private:
  struct Layer {
    cuda::DeviceLayer w;
    DeviceBuffer kv;  // K rows [context][kv_dim], then V rows, f16
  };

  // y (+)= W x for n tokens; quantizes x first when W takes int8 activations.
  void project(const DeviceWeight& w, const float* x, const BlockQ8A* xq, int n, float* y, bool accumulate);
  const BlockQ8A* prepare(const DeviceWeight& w, const float* x, int n);

  format::HParams hp_;
  GpuLayerRange range_;
  int context_, batch_;
  int q_dim_, kv_dim_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  std::vector<Layer> layers_;
  DeviceBuffer x_, xb_, q_, k_, v_, hb_, hb2_, xq_, inv_freq_;
};

void validate(const format::HParams& hp, GpuLayerRange range) {
  if (range.count <= 0 || range.first < 0 || range.first + range.count > static_cast<int>(hp.n_layers))
    throw Error("GPU offload: layers " + std::to_string(range.first) + "-" +
                std::to_string(range.first + range.count - 1) + " are outside the model's " +
                std::to_string(hp.n_layers) + " layers (0-" + std::to_string(hp.n_layers - 1) + ")");
  if (hp.head_dim > 256 || hp.head_dim % 2 != 0)
    throw Error("GPU offload: head_dim " + std::to_string(hp.head_dim) + " is not supported (even, <= 256)");
}

// The CUDA kernels read F32/F16/BF16/Q8/Q4; other block types stay on the CPU.
void check_types(const ModelFile& file, GpuLayerRange range) {
  for (const TensorView& t : file.tensors()) {
    if (t.layer < range.first || t.layer >= range.first + range.count) continue;
    if (t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16 || t.dtype == DType::Q8 ||
        t.dtype == DType::Q4)
      continue;
    throw Error(file.path(), -1, "GPU offload: tensor '" + t.name + "' is " + std::string(dtype_name(t.dtype)) +
                                     ", which the CUDA kernels do not read (f32, f16, bf16, q8, q4); use -ngl 0 "
                                     "or a q4/q8 file");
  }
}

// Refuses before any weight is copied when the range cannot fit, naming how many of
// the requested layers would (counted from the end, as -ngl counts).
void check_fits(const ModelFile& file, GpuLayerRange range, int context, int batch, uint64_t free) {
  const uint64_t need = GpuOffload::device_bytes(file, range, context, batch);
  if (need + kReserveBytes <= free) return;
  uint64_t used = gpu_buffer_bytes(file.hparams(), batch) + kReserveBytes;
  int fit = 0;
  for (int l = range.first + range.count - 1; l >= range.first; --l) {
    used += gpu_layer_bytes(file, l, context);
    if (used > free) break;
    ++fit;
  }
  throw Error("GPU offload: " + std::to_string(range.count) + " layers need " + std::to_string(need >> 20) +
              " MiB of GPU memory at context " + std::to_string(context) + " but only " +
              std::to_string(free >> 20) + " MiB are free; " + std::to_string(fit) +
              " layers would fit (-ngl " + std::to_string(fit) + ", or a smaller -c)");
}

CudaOffload::CudaOffload(const ModelFile& file, const ModelWeights& weights, GpuLayerRange range, int context,
                         int batch)
    : hp_(file.hparams()), range_(range), context_(context), batch_(batch) {
  validate(hp_, range);
  check_types(file, range);
  const int device = cuda::require_device();
  name_ = cuda::describe_device(device);
  check_fits(file, range, context, batch, cuda::free_device_bytes());
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");

  q_dim_ = static_cast<int>(hp_.n_heads * hp_.head_dim);
  kv_dim_ = static_cast<int>(hp_.n_kv_heads * hp_.head_dim);
  const uint64_t b = static_cast<uint64_t>(batch), dim = hp_.dim, hidden = hp_.hidden_dim;
  const int64_t widest = std::max<int64_t>({hp_.dim, hp_.hidden_dim, q_dim_});
  x_ = DeviceBuffer(b * dim * sizeof(float));
  xb_ = DeviceBuffer(b * std::max<uint64_t>(dim, q_dim_) * sizeof(float));
  q_ = DeviceBuffer(b * q_dim_ * sizeof(float));
  k_ = DeviceBuffer(b * kv_dim_ * sizeof(float));
  v_ = DeviceBuffer(b * kv_dim_ * sizeof(float));
  hb_ = DeviceBuffer(b * hidden * sizeof(float));
  hb2_ = DeviceBuffer(b * hidden * sizeof(float));
  xq_ = DeviceBuffer(b * static_cast<uint64_t>(q8a_blocks(widest)) * sizeof(BlockQ8A));
  const std::vector<float> inv = rope_inv_freq(hp_);
  inv_freq_ = DeviceBuffer(inv.size() * sizeof(float));
  check(cudaMemcpy(inv_freq_.get(), inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice), "rope table");

  const uint64_t kv_bytes = 2 * uint64_t(context) * kv_dim_ * sizeof(uint16_t);
  for (int l = range.first; l < range.first + range.count; ++l)
    layers_.push_back({cuda::upload_layer(file, weights.layers[static_cast<size_t>(l)], l), DeviceBuffer(kv_bytes)});
}

const BlockQ8A* CudaOffload::prepare(const DeviceWeight& w, const float* x, int n) {
  if (!dtype_is_quantized(w.dtype)) return nullptr;
  cuda::quantize_activations(x, n, w.cols, xq_.get<BlockQ8A>(), stream_);
  return xq_.get<BlockQ8A>();
}

void CudaOffload::project(const DeviceWeight& w, const float* x, const BlockQ8A* xq, int n, float* y,
                          bool accumulate) {
  cuda::matmul(w.dtype, w.data, w.rows, w.cols, n, x, xq, y, w.rows, accumulate, stream_);
}

void CudaOffload::run_layers(float* x, int n, int pos0) {
  if (n <= 0) return;
  if (n > batch_ || pos0 < 0 || pos0 + n > context_)
    throw Error("GPU offload: " + std::to_string(n) + " tokens at position " + std::to_string(pos0) +
                " exceed the batch " + std::to_string(batch_) + " or context " + std::to_string(context_));
  const int dim = static_cast<int>(hp_.dim), hidden = static_cast<int>(hp_.hidden_dim);
  const int n_heads = static_cast<int>(hp_.n_heads), n_kv = static_cast<int>(hp_.n_kv_heads);
  const int hd = static_cast<int>(hp_.head_dim);
  float* dx = x_.get<float>();
  float *xb = xb_.get<float>(), *q = q_.get<float>(), *k = k_.get<float>(), *v = v_.get<float>();
  float *hb = hb_.get<float>(), *hb2 = hb2_.get<float>();
  const size_t x_bytes = size_t(n) * dim * sizeof(float);
  check(cudaMemcpyAsync(dx, x, x_bytes, cudaMemcpyHostToDevice, stream_), "residual stream to GPU");

  for (Layer& L : layers_) {
    const cuda::DeviceLayer& w = L.w;
    __half* k_cache = L.kv.get<__half>();
    __half* v_cache = k_cache + size_t(context_) * kv_dim_;

    // Attention: norm, q/k/v, biases + RoPE + cache store, attention, output projection
    // added straight into the residual stream.
    cuda::rmsnorm(xb, dx, w.attention_norm, n, dim, hp_.norm_eps, stream_);
    const BlockQ8A* xq = prepare(w.wq, xb, n);
    project(w.wq, xb, xq, n, q, false);
    project(w.wk, xb, xq, n, k, false);
    project(w.wv, xb, xq, n, v, false);
    cuda::rope_and_store(q, k, v, w.bq, w.bk, w.bv, n, n_heads, n_kv, hd, pos0, inv_freq_.get<float>(), k_cache,
                         v_cache, stream_);
    cuda::attention(q, k_cache, v_cache, xb, n, n_heads, n_kv, hd, pos0, static_cast<int>(hp_.sliding_window),
                    stream_);
    xq = prepare(w.wo, xb, n);
    project(w.wo, xb, xq, n, dx, true);

    // Feed-forward: norm, SwiGLU(gate, up), down projection added into the stream.
    cuda::rmsnorm(xb, dx, w.ffn_norm, n, dim, hp_.norm_eps, stream_);
    xq = prepare(w.w1, xb, n);
    project(w.w1, xb, xq, n, hb, false);
    project(w.w3, xb, xq, n, hb2, false);
    cuda::swiglu(hb, hb2, int64_t{n} * hidden, stream_);
    xq = prepare(w.w2, hb, n);
    project(w.w2, hb, xq, n, dx, true);
  }
  check(cudaMemcpyAsync(x, dx, x_bytes, cudaMemcpyDeviceToHost, stream_), "residual stream from GPU");
  check(cudaStreamSynchronize(stream_), "offloaded layers");
}

}  // namespace

std::unique_ptr<GpuOffload> GpuOffload::create(const ModelFile& file, const ModelWeights& weights,
                                               GpuLayerRange range, int context, int batch) {
  return std::make_unique<CudaOffload>(file, weights, range, context, std::max(1, batch));
}

}  // namespace qrun
