#include "src/cuda/cuda_buffers.cuh"

#include "src/cuda/cuda_check.h"

namespace qrun::cuda {

DeviceBuffer::DeviceBuffer(uint64_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t e = cudaMalloc(&p_, bytes);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // an out-of-memory error is not sticky: clear it for later checks
    throw Error("CUDA: cannot allocate " + std::to_string(bytes >> 20) + " MiB on the GPU: " + cudaGetErrorString(e));
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (p_) cudaFree(p_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (p_) cudaFree(p_);
    p_ = o.p_, bytes_ = o.bytes_;
    o.p_ = nullptr, o.bytes_ = 0;
  }
  return *this;
}

namespace {

std::string version_string(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

}  // namespace

int require_device() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaErrorInsufficientDriver) {
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    if (driver == 0) throw Error("GPU offload: no NVIDIA driver found (no GPU?); run without -ngl/--gpu-layers");
    throw Error("GPU offload: the NVIDIA driver supports CUDA " + version_string(driver) + " but this build needs CUDA " +
                version_string(runtime) + "; update the driver, or run without -ngl/--gpu-layers");
  }
  if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0))
    throw Error("GPU offload: no CUDA GPU found; run without -ngl/--gpu-layers");
  if (e != cudaSuccess)
    throw Error(std::string("GPU offload: cannot use the GPU (cudaGetDeviceCount: ") + cudaGetErrorString(e) +
                "); run without -ngl/--gpu-layers");
  check(cudaSetDevice(0), "cudaSetDevice");
  return 0;
}

uint64_t free_device_bytes() {
  size_t free = 0, total = 0;
  check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
  return free;
}

std::string describe_device(int device) {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  return std::string(p.name) + " (" + std::to_string(p.totalGlobalMem >> 20) + " MiB, sm_" +
         std::to_string(p.major) + std::to_string(p.minor) + ")";
}

DeviceLayer upload_layer(const ModelFile& file, const LayerWeights& w, int layer) {
  const format::LayerRange range = file.layers()[static_cast<size_t>(layer)];
  const uint8_t* host = file.mapping().data() + range.offset;
  DeviceLayer d;
  d.storage = DeviceBuffer(range.size);
  // Synchronous copy from the mapping: done once at load, and it pages the layer in.
  check(cudaMemcpy(d.storage.get(), host, range.size, cudaMemcpyHostToDevice), "upload of layer weights");

  // Same offset inside the range on both sides.
  auto at = [&](const void* p, const char* what) -> const uint8_t* {
    const auto* b = static_cast<const uint8_t*>(p);
    if (b < host || b >= host + range.size)
      throw Error(file.path(), -1, "layer " + std::to_string(layer) + " tensor " + what + " lies outside its layer range");
    return d.storage.get() + (b - host);
  };
  auto weight = [&](const Weight& m, const char* what) {
    return DeviceWeight{m.dtype, at(m.data, what), m.rows, m.cols};
  };
  d.attention_norm = reinterpret_cast<const float*>(at(w.attention_norm, "attention_norm"));
  d.ffn_norm = reinterpret_cast<const float*>(at(w.ffn_norm, "ffn_norm"));
  if (w.bq) {
    d.bq = reinterpret_cast<const float*>(at(w.bq, "bq"));
    d.bk = reinterpret_cast<const float*>(at(w.bk, "bk"));
    d.bv = reinterpret_cast<const float*>(at(w.bv, "bv"));
  }
  d.wq = weight(w.wq, "wq");
  d.wk = weight(w.wk, "wk");
  d.wv = weight(w.wv, "wv");
  d.wo = weight(w.wo, "wo");
  d.w1 = weight(w.w1, "w1");
  d.w2 = weight(w.w2, "w2");
  d.w3 = weight(w.w3, "w3");
  return d;
}

}  // namespace qrun::cuda
