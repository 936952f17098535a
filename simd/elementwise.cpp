// Elementwise and reduction kernels on f32 rows (and the f16 KV-cache rows). Full
// vectors go through Highway; the last n % Lanes elements are done in scalar code, but
// for the gated activations (see GatedActivation).
#include "simd/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/elementwise.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cmath>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "quant/quantize.h"
#include "simd/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace qrun {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;

// Two accumulators hide FMA latency.
float DotF32Impl(const float* a, const float* b, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), acc1);
  }
  for (; i + N <= n; i += N) acc0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), acc0);
  float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void AxpyF32Impl(float* y, float a, const float* x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto va = hn::Set(d, a);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += a * x[i];
}

void ScaleF32Impl(float* y, float a, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto va = hn::Set(d, a);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, y + i), va), d, y + i);
  for (; i < n; ++i) y[i] *= a;
}

void AddF32Impl(float* y, const float* x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Add(hn::LoadU(d, y + i), hn::LoadU(d, x + i)), d, y + i);
  for (; i < n; ++i) y[i] += x[i];
}

void RmsNormImpl(float* out, const float* x, const float* weight, int64_t n, float eps) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const float ss = DotF32Impl(x, x, n);
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  const auto vinv = hn::Set(d, inv);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), vinv), hn::LoadU(d, weight + i)), d, out + i);
  for (; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

// gate[i] = op(gate[i], up[i]) for gated activations. The last n % Lanes elements go
// through the same vector code on a padded copy: a token's values must not depend on
// where it falls in a batch (the activation runs over n tokens' rows at once, and a
// scalar tail's std::exp differed from Highway's Exp in the last bit, so a prompt's
// logits changed with the batch size).
template <class Op>
HWY_INLINE void GatedActivation(float* gate, const float* up, int64_t n, Op op) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(op(d, hn::LoadU(d, gate + i), hn::LoadU(d, up + i)), d, gate + i);
  if (i == n) return;
  float g[HWY_MAX_BYTES / sizeof(float)] = {}, u[HWY_MAX_BYTES / sizeof(float)] = {};
  std::copy(gate + i, gate + n, g);
  std::copy(up + i, up + n, u);
  hn::StoreU(op(d, hn::LoadU(d, g), hn::LoadU(d, u)), d, g);
  std::copy(g, g + (n - i), gate + i);
}

// silu(g) * u = g / (1 + exp(-g)) * u, with Highway's vector exp (~1 ulp).
void SwigluImpl(float* gate, const float* up, int64_t n) {
  GatedActivation(gate, up, n, [](DF d, auto g, auto u) {
    return hn::Mul(hn::Div(g, hn::Add(hn::Set(d, 1.0f), hn::Exp(d, hn::Neg(g)))), u);
  });
}

// GELU in its tanh form, as Gemma's gelu_pytorch_tanh: 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))).
void GegluTanhImpl(float* gate, const float* up, int64_t n) {
  GatedActivation(gate, up, n, [](DF d, auto g, auto u) {
    const auto inner = hn::Mul(hn::Set(d, 0.7978845608f), hn::MulAdd(hn::Mul(hn::Set(d, 0.044715f), g), hn::Mul(g, g), g));
    return hn::Mul(hn::Mul(hn::Mul(hn::Set(d, 0.5f), g), hn::Add(hn::Set(d, 1.0f), hn::Tanh(d, inner))), u);
  });
}

// gpt-oss's clamped SwiGLU: g = min(g, limit), u = clamp(u, -limit, limit), then
// g sigmoid(1.702 g) (u + 1).
void SwigluClampedImpl(float* gate, const float* up, int64_t n, float limit) {
  GatedActivation(gate, up, n, [limit](DF d, auto g, auto u) {
    const auto lim = hn::Set(d, limit);
    g = hn::Min(g, lim);
    u = hn::Min(hn::Max(u, hn::Neg(lim)), lim);
    const auto glu = hn::Div(g, hn::Add(hn::Set(d, 1.0f), hn::Exp(d, hn::Mul(hn::Set(d, -1.702f), g))));
    return hn::Mul(glu, hn::Add(u, hn::Set(d, 1.0f)));
  });
}

void SoftmaxImpl(float* x, int64_t n) {
  if (n <= 0) return;
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  float mx = x[0];
  int64_t i = 0;
  if (n >= N) {
    auto vmax = hn::LoadU(d, x);
    for (i = N; i + N <= n; i += N) vmax = hn::Max(vmax, hn::LoadU(d, x + i));
    mx = hn::GetLane(hn::MaxOfLanes(d, vmax));
  }
  for (; i < n; ++i) mx = std::max(mx, x[i]);
  // exp(x - max) <= 1, so the sum cannot overflow.
  const auto vmx = hn::Set(d, mx);
  auto vsum = hn::Zero(d);
  for (i = 0; i + N <= n; i += N) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vmx));
    hn::StoreU(e, d, x + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  ScaleF32Impl(x, 1.0f / sum, n);
}

void F32ToF16RowImpl(const float* x, uint16_t* out, int64_t n) {
  const DF d;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  // F16C rounds to nearest even like f32_to_f16. Highway 1.0.3's emulated DemoteTo
  // (SSE4, scalar) truncates instead, so those targets use the scalar conversion.
  for (; i + N <= n; i += N)
    hn::StoreU(hn::DemoteTo(dh, hn::LoadU(d, x + i)), dh, reinterpret_cast<hwy::float16_t*>(out + i));
#else
  (void)dh;
  (void)N;
#endif
  for (; i < n; ++i) out[i] = f32_to_f16(x[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qrun {

HWY_EXPORT(DotF32Impl);
HWY_EXPORT(AxpyF32Impl);
HWY_EXPORT(AddF32Impl);
HWY_EXPORT(RmsNormImpl);
HWY_EXPORT(SwigluImpl);
HWY_EXPORT(GegluTanhImpl);
HWY_EXPORT(SwigluClampedImpl);
HWY_EXPORT(SoftmaxImpl);
HWY_EXPORT(F32ToF16RowImpl);

float dot_f32(const float* a, const float* b, int64_t n) { return HWY_DYNAMIC_DISPATCH(DotF32Impl)(a, b, n); }
void axpy_f32(float* y, float a, const float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(AxpyF32Impl)(y, a, x, n); }
void add_f32(float* y, const float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(AddF32Impl)(y, x, n); }
void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps) {
  HWY_DYNAMIC_DISPATCH(RmsNormImpl)(out, x, weight, n, eps);
}
void swiglu(float* gate, const float* up, int64_t n) { HWY_DYNAMIC_DISPATCH(SwigluImpl)(gate, up, n); }
void geglu_tanh(float* gate, const float* up, int64_t n) { HWY_DYNAMIC_DISPATCH(GegluTanhImpl)(gate, up, n); }
void swiglu_clamped(float* gate, const float* up, int64_t n, float limit) {
  HWY_DYNAMIC_DISPATCH(SwigluClampedImpl)(gate, up, n, limit);
}
void softmax(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(SoftmaxImpl)(x, n); }
void f32_to_f16_row(const float* x, uint16_t* out, int64_t n) {
  HWY_DYNAMIC_DISPATCH(F32ToF16RowImpl)(x, out, n);
}

}  // namespace qrun
#endif  // HWY_ONCE
