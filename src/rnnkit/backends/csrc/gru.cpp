// GRU (torch's equations) and layer-norm GRU (haste's, torch's gate order): native time loops
// with hand-written BPTT (see common.h for the ABI, the layout and the keep / rmask
// conventions). Both share the gate math of one row; they differ in the recurrent projection u:
//   GRU:    u = W_hh h_{t-1} + b_hh
//   LN-GRU: u = g_hh r^ + b_hh, r^ = LN(r), r = W_hh (h_{t-1} * rmask)
// xp [T, B, 3H] holds the input projection plus b_ih (the LN-GRU's: LN(W_ih x; g_ih) + b_ih);
// b_hh stays apart because u_n is gated by r.
#include "common.h"

namespace rnnkit {
namespace {

// r = s(x_r + u_r), z = s(x_z + u_z), n = tanh(x_n + r u_n) for one batch row: xb, ub [3H];
// sb [4H] receives r, z, n, u_n (what the backward needs).
template <typename T>
inline void gru_gates(const T* xb, const T* ub, T* sb, int64_t H) {
  #pragma omp simd
  for (int64_t j = 0; j < 2 * H; ++j) sb[j] = xb[j] + ub[j];
  sigmoid_inplace(sb, 2 * H);
  #pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    sb[3 * H + j] = ub[2 * H + j];
    sb[2 * H + j] = xb[2 * H + j] + sb[j] * ub[2 * H + j];
  }
  tanh_into(sb + 2 * H, sb + 2 * H, H);
}

// gru_gates, then h~ = n + z (h_{t-1} - n) and h = k h_{t-1} + (1 - k) h~ (hp, zk, h [H])
template <typename T>
inline void gru_gates_row(const T* xb, const T* ub, const T* hp, const T* zk, T* sb, T* h,
                          int64_t H) {
  gru_gates(xb, ub, sb, H);
  #pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const T n = sb[2 * H + j];
    h[j] = zk[j] * hp[j] + (T(1) - zk[j]) * (n + sb[H + j] * (hp[j] - n));
  }
}

// The backward of gru_gates_row for one batch row: dh [H] holds dL/dh_t from the later steps
// (gh adds the output's gradient) and receives the direct part of dL/dh_{t-1} (the recurrent
// part, through u, is added by the caller); dxb [3H] = d(x_r, x_z, x_n), dub [3H] = d u.
template <typename T>
inline void gru_gates_row_backward(const T* sb, const T* hp, const T* zk, const T* gh, T* dh,
                                   T* dxb, T* dub, int64_t H) {
  #pragma omp simd  // independent j (GCC gives up its alias checks here)
  for (int64_t j = 0; j < H; ++j) {
    const T d = dh[j] + gh[j];
    const T dhn = (T(1) - zk[j]) * d;
    const T r = sb[j], z = sb[H + j], n = sb[2 * H + j], un = sb[3 * H + j];
    const T dan = dhn * (T(1) - z) * (T(1) - n * n);
    const T daz = dhn * (hp[j] - n) * z * (T(1) - z);
    const T dar = dan * un * r * (T(1) - r);
    dxb[j] = dar; dxb[H + j] = daz; dxb[2 * H + j] = dan;
    dub[j] = dar; dub[H + j] = daz; dub[2 * H + j] = dan * r;
    dh[j] = zk[j] * d + dhn * z;
  }
}

// ---------------------------------------------------------------- GRU -------------------------
// ptrs: xp, h0, w_hh^T [H, 3H], b_hh [3H] (or null), keep_h -> hs [T, B, H], saved [T, B, 4H]
// (r, z, n, u_n; only with flag = 1, for a backward: without it the gates live in one row)
template <typename T>
void gru_forward(const Args<T>& a) {
  const int64_t Tn = a.Tn, B = a.B, H = a.H, BH = B * H, G = 3 * H;
  const T *xpp = a[0], *h0 = a[1], *w = a[2], *bias = a[3], *kh = a[4];
  T *hsp = a[5], *svp = a.flag ? a[6] : nullptr;
  std::vector<T> zeros(BH, T(0)), u(B * G), scratch(4 * H);
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hp = t ? hsp + (t - 1) * BH : h0;
    if (bias) {
      for (int64_t b = 0; b < B; ++b) std::copy(bias, bias + G, u.data() + b * G);
    }
    gemm_nn<T>(B, G, H, hp, w, bias ? T(1) : T(0), u.data());
    const T* zk = keep_at(kh, t, BH, zeros);
    const T* xpt = xpp + t * B * G;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b;
      T* sb = svp ? svp + row * 4 * H : scratch.data();
      gru_gates_row(xpt + b * G, u.data() + b * G, hp + b * H, zk + b * H, sb,
                    hsp + row * H, H);
    }
  }
}

// ptrs: gh [T, B, H] (upstream), hs, saved, h0, w_hh [3H, H], keep_h
//       -> dxp [T, B, 3H], dh0 [B, H], dw_hh [3H, H], db_hh [3H] (the last two zero-initialized)
template <typename T>
void gru_backward(const Args<T>& a) {
  const int64_t Tn = a.Tn, B = a.B, H = a.H, BH = B * H, G = 3 * H;
  const T *ghp = a[0], *hsp = a[1], *svp = a[2], *h0 = a[3], *w = a[4], *kh = a[5];
  T *dxpp = a[6], *dh0 = a[7], *dbh = a[9];
  WeightGrad<T> dw(B, G, H, a[8]);
  std::vector<T> zeros(BH, T(0)), dh(BH, T(0)), rec(BH);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* hp = t ? hsp + (t - 1) * BH : h0;
    const T* zk = keep_at(kh, t, BH, zeros);
    T* du = dw.step_rows(hp, nullptr);  // [B, 3H]
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b, o = b * H;
      T* dub = du + b * G;
      gru_gates_row_backward(svp + row * 4 * H, hp + o, zk + o, ghp + row * H, dh.data() + o,
                             dxpp + row * G, dub, H);
      #pragma omp simd
      for (int64_t j = 0; j < G; ++j) dbh[j] += dub[j];
    }
    backprop_recurrent<T>(B, H, G, du, w, nullptr, rec.data(), dh.data());
  }
  dw.flush();
  std::copy(dh.begin(), dh.end(), dh0);
}

// ---------------------------------------------------------------- layer-norm GRU --------------
// Saved for the backward: r^ and its rstd; the gates are recomputed from xp and r^ there
// (cheaper than first-touching 4H more floats per row, see lnlstm_forward).

// u = g_hh r^ + b_hh (one row, [3H]; b_hh may be null)
template <typename T>
inline void lngru_u(const T* gh, const T* bh, const T* rh, T* u, int64_t G) {
  if (bh) {
    #pragma omp simd
    for (int64_t j = 0; j < G; ++j) u[j] = gh[j] * rh[j] + bh[j];
  } else {
    #pragma omp simd
    for (int64_t j = 0; j < G; ++j) u[j] = gh[j] * rh[j];
  }
}

// ptrs: xp, h0, w_hh^T [H, 3H], g_hh [3H], b_hh [3H] (or null), keep_h, rmask
//       -> hs [T, B, H]; with flag = 1 also r^ [T, B, 3H], rstd [T, B] (else null: one scratch
//          row); scalar: eps
template <typename T>
void lngru_forward(const Args<T>& a) {
  const int64_t Tn = a.Tn, B = a.B, H = a.H, BH = B * H, G = 3 * H;
  const T eps = T(a.scalar);
  const T *xpp = a[0], *h0 = a[1], *w = a[2], *gh = a[3], *bh = a[4], *kh = a[5], *rm = a[6];
  T* hsp = a[7];
  T *rhp = a.flag ? a[8] : nullptr, *rsp = a.flag ? a[9] : nullptr;
  std::vector<T> zeros(BH, T(0)), hm(rm ? BH : 0), r(B * G), u(G), sb(4 * H), rhs(G);
  T rs_scratch;
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hp = t ? hsp + (t - 1) * BH : h0;
    gemm_nn<T>(B, G, H, masked(hp, rm, hm.data(), BH), w, T(0), r.data());
    const T* zk = keep_at(kh, t, BH, zeros);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b;
      T* rh = rhp ? rhp + row * G : rhs.data();
      (rsp ? rsp[row] : rs_scratch) = normalize_row(r.data() + b * G, rh, G, eps);
      lngru_u(gh, bh, rh, u.data(), G);
      gru_gates_row(xpp + row * G, u.data(), hp + b * H, zk + b * H, sb.data(), hsp + row * H,
                    H);
    }
  }
}

// ptrs: gh [T, B, H] (upstream), xp, hs, r^, rstd, h0, w_hh [3H, H], g_hh [3H], b_hh [3H] (or
//       null), keep_h, rmask -> dxp [T, B, 3H], dh0 [B, H], dw_hh [3H, H], dg_hh [3H],
//       db_hh [3H] (the last three zero-initialized)
template <typename T>
void lngru_backward(const Args<T>& a) {
  const int64_t Tn = a.Tn, B = a.B, H = a.H, BH = B * H, G = 3 * H;
  const T *ghp = a[0], *xpp = a[1], *hsp = a[2], *rhp = a[3], *rsp = a[4], *h0 = a[5];
  const T *w = a[6], *gh = a[7], *bh = a[8], *kh = a[9], *rm = a[10];
  T *dxpp = a[11], *dh0 = a[12], *dgh = a[14], *dbh = a[15];
  WeightGrad<T> dw(B, G, H, a[13]);
  std::vector<T> zeros(BH, T(0)), dh(BH, T(0)), rec(BH), u(G), sb(4 * H), du(G);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* hp = t ? hsp + (t - 1) * BH : h0;
    const T* zk = keep_at(kh, t, BH, zeros);
    T* dr4 = dw.step_rows(hp, rm);  // [B, 3H]: d (W_hh (h_{t-1} * rmask))
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b, o = b * H;
      const T* rh = rhp + row * G;
      lngru_u(gh, bh, rh, u.data(), G);
      gru_gates(xpp + row * G, u.data(), sb.data(), H);
      gru_gates_row_backward(sb.data(), hp + o, zk + o, ghp + row * H, dh.data() + o,
                             dxpp + row * G, du.data(), H);
      // u = g_hh r^ + b_hh: dg_hh, db_hh and dL/dr^ = du g_hh (in place), then the LN
      // backward into dr
      #pragma omp simd
      for (int64_t j = 0; j < G; ++j) {
        dgh[j] += du[j] * rh[j];
        dbh[j] += du[j];
        du[j] *= gh[j];
      }
      normalize_row_backward(du.data(), rh, rsp[row], dr4 + b * G, G);
    }
    backprop_recurrent<T>(B, H, G, dr4, w, rm, rec.data(), dh.data());
  }
  dw.flush();
  std::copy(dh.begin(), dh.end(), dh0);
}

}  // namespace
}  // namespace rnnkit

RNNKIT_EXPORT(gru_forward, rnnkit::gru_forward)
RNNKIT_EXPORT(gru_backward, rnnkit::gru_backward)
RNNKIT_EXPORT(lngru_forward, rnnkit::lngru_forward)
RNNKIT_EXPORT(lngru_backward, rnnkit::lngru_backward)
