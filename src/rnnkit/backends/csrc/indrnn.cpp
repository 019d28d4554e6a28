// IndRNN: native time loop with hand-written BPTT (see common.h for the ABI, the layout and the
// keep / rmask conventions). No GEMM: the recurrent weight is a vector.
#include "common.h"

namespace rnnkit {
namespace {

// h~ = phi(xp + u * (h_{t-1} * rmask)), phi = relu (flag = 1) or tanh; then zoneout/keep.
// ptrs: xp [T, B, H], h0 [B, H], u [H], keep_h, rmask -> hs, hn (phi's output) [T, B, H]
template <typename T>
void indrnn_forward(const Args<T>& a) {
  const int64_t Tn = a.Tn, B = a.B, H = a.H, BH = B * H;
  const bool relu = a.flag;
  const T *x = a[0], *hp = a[1], *up = a[2], *kh = a[3], *rm = a[4];
  T *h = a[5], *hn = a[6];
  for (int64_t t = 0; t < Tn; ++t) {
    const int64_t off = t * BH;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T pre = x[off + k] + up[j] * (rm ? hp[k] * rm[k] : hp[k]);
        const T v = relu ? (pre > T(0) ? pre : T(0)) : std::tanh(pre);
        hn[off + k] = v;
        const T z = kh ? kh[off + k] : T(0);
        h[off + k] = z * hp[k] + (T(1) - z) * v;
      }
    }
    hp = h + off;
  }
}

// ptrs: gh [T, B, H] (upstream), hs, hn, h0, u, keep_h, rmask
//       -> dxp [T, B, H], dh0 [B, H], du [H] (zero-initialized)
template <typename T>
void indrnn_backward(const Args<T>& a) {
  const int64_t Tn = a.Tn, B = a.B, H = a.H, BH = B * H;
  const bool relu = a.flag;
  const T *ghp = a[0], *h = a[1], *hn = a[2], *h0 = a[3], *up = a[4], *kh = a[5], *rm = a[6];
  T *dx = a[7], *dh0 = a[8], *dup = a[9];
  std::vector<T> dh(BH, T(0));
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const int64_t off = t * BH;
    const T* hp = t ? h + off - BH : h0;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T d = dh[k] + ghp[off + k];
        const T z = kh ? kh[off + k] : T(0);
        const T v = hn[off + k];
        const T dpre = (T(1) - z) * d * (relu ? (v > T(0) ? T(1) : T(0)) : T(1) - v * v);
        dx[off + k] = dpre;
        const T m = rm ? rm[k] : T(1);
        dup[j] += dpre * hp[k] * m;
        dh[k] = dpre * up[j] * m + z * d;
      }
    }
  }
  std::copy(dh.begin(), dh.end(), dh0);
}

}  // namespace
}  // namespace rnnkit

RNNKIT_EXPORT(indrnn_forward, rnnkit::indrnn_forward)
RNNKIT_EXPORT(indrnn_backward, rnnkit::indrnn_backward)
