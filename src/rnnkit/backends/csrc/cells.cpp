// Native time loops with hand-written backpropagation through time for rnnkit's custom cells.
// Built on first use by rnnkit/backends/native.py (torch.utils.cpp_extension.load) and cached.
//
// Speed (issue 4): per step there is one GEMM (the recurrent projection), called directly on raw
// pointers -- BLAS sgemm_/dgemm_ from libtorch_cpu when RNNKIT_BLAS is defined, else one
// at::mm through the dispatcher -- and no tensor is allocated or sliced inside the time loop.
// The elementwise gate math runs in passes over contiguous rows; exp/tanh go through
// sigmoid_inplace / tanh_into, which use ATen's at::vec::Vectorized<float> (Sleef, 1-ulp) when
// RNNKIT_VEC is defined (an AVX2+FMA build, chosen at runtime by native.py from
// torch.backends.cpu.get_cpu_capability(); never -march=native) and std:: scalar code otherwise.
// float64 always takes the scalar path, so the float64 gradchecks test the exact same formulas.
//
// Layout: time-major, contiguous. xp [T, B, G] already holds W_ih x_t + b_ih + b_hh.
// keep_h / keep_c [T, B, H] (or empty): s_t = keep * s_{t-1} + (1 - keep) * s~_t -- zoneout
// masks (training), the zoneout probability (evaluation), and 1 at padded steps (lengths).
// rmask [B, H] (or empty): variational recurrent dropout, h_{t-1} -> h_{t-1} * rmask.
#include <torch/extension.h>

#ifdef RNNKIT_VEC
#include <ATen/cpu/vec/vec.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

using at::Tensor;

#ifdef RNNKIT_BLAS
// Fortran BLAS (LP64, as ATen's own CPUBlas declares them), exported by libtorch_cpu (MKL).
extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b,
            const int* ldb, const double* beta, double* c, const int* ldc);
}
#endif

namespace {

// ---------------------------------------------------------------- primitives ------------------
// Row-major C[M, N] = beta * C + A[M, K] @ W[K, N] (all contiguous).
template <typename T>
void gemm_nn(int64_t M, int64_t N, int64_t K, const T* A, const T* W, T beta, T* C) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t k = 0; k < M * N; ++k) C[k] = beta == T(0) ? T(0) : beta * C[k];
    return;
  }
#ifdef RNNKIT_BLAS
  // column-major view: C^T [N, M] = W^T [N, K] @ A^T [K, M]
  const char n = 'N';
  const int m_ = int(N), n_ = int(M), k_ = int(K);
  const T one = T(1);
  if constexpr (std::is_same_v<T, float>) {
    sgemm_(&n, &n, &m_, &n_, &k_, &one, W, &m_, A, &k_, &beta, C, &m_);
  } else {
    dgemm_(&n, &n, &m_, &n_, &k_, &one, W, &m_, A, &k_, &beta, C, &m_);
  }
#else
  auto o = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  Tensor a = at::from_blob(const_cast<T*>(A), {M, K}, o);
  Tensor w = at::from_blob(const_cast<T*>(W), {K, N}, o);
  Tensor c = at::from_blob(C, {M, N}, o);
  if (beta == T(0)) {
    at::mm_out(c, a, w);
  } else {
    c.mul_(beta).addmm_(a, w);
  }
#endif
}

template <typename T>
inline void sigmoid_inplace(T* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] = T(1) / (T(1) + std::exp(-x[j]));
}

template <typename T>
inline void tanh_into(const T* x, T* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] = std::tanh(x[j]);
}

#ifdef RNNKIT_VEC
using VecF = at::vec::Vectorized<float>;

template <>
inline void sigmoid_inplace<float>(float* x, int64_t n) {
  const VecF one(1.f);
  int64_t j = 0;
  for (; j + VecF::size() <= n; j += VecF::size()) {
    (one / (one + VecF::loadu(x + j).neg().exp())).store(x + j);
  }
  if (j < n) (one / (one + VecF::loadu(x + j, n - j).neg().exp())).store(x + j, n - j);
}

// tanh(x) = 1 - 2 / (1 + exp(2x)): one Sleef exp instead of Sleef's slower tanh (measured 3x
// the cost of exp); absolute error ~1e-7, saturates to +-1 exactly (exp -> inf / 0).
inline VecF tanh_vec(const VecF& x) {
  const VecF one(1.f), two(2.f);
  return one - two / (one + (x + x).exp());
}

template <>
inline void tanh_into<float>(const float* x, float* y, int64_t n) {
  int64_t j = 0;
  for (; j + VecF::size() <= n; j += VecF::size()) tanh_vec(VecF::loadu(x + j)).store(y + j);
  if (j < n) tanh_vec(VecF::loadu(x + j, n - j)).store(y + j, n - j);
}
#endif

template <typename T>
inline const T* opt_ptr(const Tensor& t) { return t.numel() ? t.data_ptr<T>() : nullptr; }

// keep coefficients of step t, or a row of zeros (no keep) -- branch-free inner loops
template <typename T>
inline const T* keep_at(const T* keep, int64_t t, int64_t BH, const std::vector<T>& zeros) {
  return keep ? keep + t * BH : zeros.data();
}

// h_{t-1} * rmask into hm (returns hm), or h_{t-1} itself without recurrent dropout
template <typename T>
inline const T* masked(const T* hp, const T* rm, T* hm, int64_t n) {
  if (!rm) return hp;
  for (int64_t k = 0; k < n; ++k) hm[k] = hp[k] * rm[k];
  return hm;
}

// dh += r (* rmask)
template <typename T>
inline void add_recurrent(T* dh, const T* r, const T* rm, int64_t n) {
  if (rm) {
    for (int64_t k = 0; k < n; ++k) dh[k] += r[k] * rm[k];
  } else {
    for (int64_t k = 0; k < n; ++k) dh[k] += r[k];
  }
}

// ---------------------------------------------------------------- peephole LSTM ---------------
// i = s(a_i + p_i c_{t-1}), f = s(a_f + p_f c_{t-1}), g = tanh(a_g), c~ = f c_{t-1} + i g,
// o = s(a_o + p_o c~), h~ = o tanh(c~); then zoneout/keep.
template <typename T>
void peephole_fwd_impl(const Tensor& xp, const Tensor& h0, const Tensor& c0, const Tensor& w_hh_t,
                       const Tensor& w_ch, const Tensor& keep_h, const Tensor& keep_c,
                       const Tensor& rmask, Tensor& hs, Tensor& cs, Tensor& gates, Tensor& ct) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = h0.size(1), G = 4 * H, BH = B * H;
  const T* pch = w_ch.data_ptr<T>();
  const T *pi = pch, *pf = pch + H, *po = pch + 2 * H;
  const T* kh = opt_ptr<T>(keep_h);
  const T* kc = opt_ptr<T>(keep_c);
  const T* rm = opt_ptr<T>(rmask);
  const T* w = w_hh_t.data_ptr<T>();
  const T* xpp = xp.data_ptr<T>();
  T* hsp = hs.data_ptr<T>();
  T* csp = cs.data_ptr<T>();
  T* gp = gates.data_ptr<T>();
  T* ctp = ct.data_ptr<T>();
  std::vector<T> zeros(BH, T(0)), hm(rm ? BH : 0), th(H);
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hp = t ? hsp + (t - 1) * BH : h0.data_ptr<T>();
    const T* cp = t ? csp + (t - 1) * BH : c0.data_ptr<T>();
    T* a = gp + t * B * G;  // [B, 4H]: pre-activations, then activated gates
    std::memcpy(a, xpp + t * B * G, sizeof(T) * B * G);
    gemm_nn<T>(B, G, H, masked(hp, rm, hm.data(), BH), w, T(1), a);
    const T* zh = keep_at(kh, t, BH, zeros);
    const T* zc = keep_at(kc, t, BH, zeros);
    T* h = hsp + t * BH;
    T* c = csp + t * BH;
    T* cc = ctp + t * BH;
    for (int64_t b = 0; b < B; ++b) {
      T* gb = a + b * G;
      const int64_t o = b * H;
      for (int64_t j = 0; j < H; ++j) {
        gb[j] += pi[j] * cp[o + j];
        gb[H + j] += pf[j] * cp[o + j];
      }
      sigmoid_inplace(gb, 2 * H);
      tanh_into(gb + 2 * H, gb + 2 * H, H);
      #pragma omp simd  // independent j (GCC gives up its alias checks here)
      for (int64_t j = 0; j < H; ++j) {
        const T cn = gb[H + j] * cp[o + j] + gb[j] * gb[2 * H + j];
        cc[o + j] = cn;
        gb[3 * H + j] += po[j] * cn;
      }
      sigmoid_inplace(gb + 3 * H, H);
      tanh_into(cc + o, th.data(), H);
      #pragma omp simd  // independent j (GCC gives up its alias checks here)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = o + j;
        c[k] = zc[k] * cp[k] + (T(1) - zc[k]) * cc[k];
        h[k] = zh[k] * hp[k] + (T(1) - zh[k]) * (gb[3 * H + j] * th[j]);
      }
    }
  }
}

template <typename T>
void peephole_bwd_impl(const Tensor& gh, const Tensor& gc, const Tensor& hs, const Tensor& cs,
                       const Tensor& gates, const Tensor& ct, const Tensor& h0, const Tensor& c0,
                       const Tensor& w_hh, const Tensor& w_ch, const Tensor& keep_h,
                       const Tensor& keep_c, const Tensor& rmask, Tensor& da, Tensor& dh0,
                       Tensor& dc0, Tensor& dw_ch) {
  const int64_t Tn = gates.size(0), B = gates.size(1), H = h0.size(1), G = 4 * H, BH = B * H;
  const T* pch = w_ch.data_ptr<T>();
  const T *pi = pch, *pf = pch + H, *po = pch + 2 * H;
  T* dp = dw_ch.data_ptr<T>();
  T *dpi = dp, *dpf = dp + H, *dpo = dp + 2 * H;
  const T* kh = opt_ptr<T>(keep_h);
  const T* kc = opt_ptr<T>(keep_c);
  const T* rm = opt_ptr<T>(rmask);
  const T* w = w_hh.data_ptr<T>();
  const T* csp = cs.data_ptr<T>();
  const T* gp = gates.data_ptr<T>();
  const T* ctp = ct.data_ptr<T>();
  T* dap = da.data_ptr<T>();
  std::vector<T> zeros(BH, T(0)), dh(BH, T(0)), dc(BH, T(0)), rec(BH), th(H);
  const T* ghp = gh.data_ptr<T>();
  const T* gcp = gc.data_ptr<T>();
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* cp = t ? csp + (t - 1) * BH : c0.data_ptr<T>();
    const T* g4 = gp + t * B * G;
    const T* cc = ctp + t * BH;
    T* d4 = dap + t * B * G;
    const T* zh = keep_at(kh, t, BH, zeros);
    const T* zc = keep_at(kc, t, BH, zeros);
    const T* ght = ghp + t * BH;
    const T* gct = gcp + t * BH;
    for (int64_t b = 0; b < B; ++b) {
      const T* gb = g4 + b * G;
      T* db = d4 + b * G;
      const int64_t o = b * H;
      tanh_into(cc + o, th.data(), H);
      #pragma omp simd  // independent j (GCC gives up its alias checks here)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = o + j;
        const T dhk = dh[k] + ght[k], dck = dc[k] + gct[k];
        const T dhn = (T(1) - zh[k]) * dhk;
        const T i = gb[j], f = gb[H + j], g = gb[2 * H + j], og = gb[3 * H + j];
        const T cn = cc[k], tc = th[j], cpk = cp[k];
        const T dao = dhn * tc * og * (T(1) - og);
        const T dcn = (T(1) - zc[k]) * dck + dhn * og * (T(1) - tc * tc) + dao * po[j];
        dpo[j] += dao * cn;
        const T dai = dcn * g * i * (T(1) - i);
        const T daf = dcn * cpk * f * (T(1) - f);
        const T dag = dcn * i * (T(1) - g * g);
        dpi[j] += dai * cpk;
        dpf[j] += daf * cpk;
        db[j] = dai; db[H + j] = daf; db[2 * H + j] = dag; db[3 * H + j] = dao;
        dc[k] = dcn * f + dai * pi[j] + daf * pf[j] + zc[k] * dck;
        dh[k] = zh[k] * dhk;  // the direct path; the recurrent one is added below
      }
    }
    gemm_nn<T>(B, H, G, d4, w, T(0), rec.data());  // [B, 4H] x [4H, H]
    add_recurrent(dh.data(), rec.data(), rm, BH);
  }
  std::copy(dh.begin(), dh.end(), dh0.data_ptr<T>());
  std::copy(dc.begin(), dc.end(), dc0.data_ptr<T>());
}

// ---------------------------------------------------------------- IndRNN ---------------------
// h~ = phi(xp + u * (h_{t-1} * rmask)), phi = relu (relu=true) or tanh; then zoneout/keep.
template <typename T>
void indrnn_fwd_impl(const Tensor& xp, const Tensor& h0, const Tensor& u, const Tensor& keep_h,
                     const Tensor& rmask, bool relu, Tensor& hs, Tensor& hn_all) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = h0.size(1);
  const T* up = u.data_ptr<T>();
  const T* kh = opt_ptr<T>(keep_h);
  const T* rm = opt_ptr<T>(rmask);
  const T* x = xp.data_ptr<T>();
  T* h = hs.data_ptr<T>();
  T* hn = hn_all.data_ptr<T>();
  const T* hp = h0.data_ptr<T>();
  for (int64_t t = 0; t < Tn; ++t) {
    const int64_t off = t * B * H;
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

template <typename T>
void indrnn_bwd_impl(const Tensor& gh, const Tensor& hs, const Tensor& hn_all, const Tensor& h0,
                     const Tensor& u, const Tensor& keep_h, const Tensor& rmask, bool relu,
                     Tensor& dxp, Tensor& dh0, Tensor& du) {
  const int64_t Tn = hs.size(0), B = hs.size(1), H = h0.size(1);
  const T* up = u.data_ptr<T>();
  const T* kh = opt_ptr<T>(keep_h);
  const T* rm = opt_ptr<T>(rmask);
  const T* ghp = gh.data_ptr<T>();
  const T* h = hs.data_ptr<T>();
  const T* hn = hn_all.data_ptr<T>();
  T* dx = dxp.data_ptr<T>();
  T* dup = du.data_ptr<T>();
  std::vector<T> dh(B * H, T(0));
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const int64_t off = t * B * H;
    const T* hp = t ? h + off - B * H : h0.data_ptr<T>();
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
  std::copy(dh.begin(), dh.end(), dh0.data_ptr<T>());
}


// ---------------------------------------------------------------- layer-norm LSTM ------------
// r = W_hh (h_{t-1} * rmask); a = xp + LN(r; g_hh); i, f, o = s(.), g = tanh(.);
// c~ = f c_{t-1} + i g; h~ = o tanh(LN(c~; g_c, b_c)); then zoneout/keep.
// Saved per step: activated gates, r^ = (r - mean) * rstd, rstd_r, c~, c^, rstd_c.
template <typename T>
inline T normalize_row(const T* v, T* out, int64_t n, T eps) {
  T mean = 0;
#pragma omp simd reduction(+ : mean)
  for (int64_t j = 0; j < n; ++j) mean += v[j];
  mean /= T(n);
  T var = 0;
#pragma omp simd reduction(+ : var)
  for (int64_t j = 0; j < n; ++j) var += (v[j] - mean) * (v[j] - mean);
  const T rstd = T(1) / std::sqrt(var / T(n) + eps);
  for (int64_t j = 0; j < n; ++j) out[j] = (v[j] - mean) * rstd;
  return rstd;
}

// dx = rstd * (dy - mean(dy) - x^ * mean(dy * x^)), the LN backward given dy = dL/dx^
template <typename T>
inline void normalize_row_backward(const T* dy, const T* xhat, T rstd, T* dx, int64_t n) {
  T m1 = 0, m2 = 0;
#pragma omp simd reduction(+ : m1, m2)
  for (int64_t j = 0; j < n; ++j) { m1 += dy[j]; m2 += dy[j] * xhat[j]; }
  m1 /= T(n);
  m2 /= T(n);
  for (int64_t j = 0; j < n; ++j) dx[j] = rstd * (dy[j] - m1 - xhat[j] * m2);
}

template <typename T>
void lnlstm_fwd_impl(const Tensor& xp, const Tensor& h0, const Tensor& c0, const Tensor& w_hh_t,
                     const Tensor& g_hh, const Tensor& g_c, const Tensor& b_c,
                     const Tensor& keep_h, const Tensor& keep_c, const Tensor& rmask, T eps,
                     Tensor& hs, Tensor& cs, Tensor& gates, Tensor& rhat, Tensor& rstd_r,
                     Tensor& ct, Tensor& chat, Tensor& rstd_c) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = h0.size(1), G = 4 * H, BH = B * H;
  const T* gh = g_hh.data_ptr<T>();
  const T* gc = g_c.data_ptr<T>();
  const T* bc = b_c.data_ptr<T>();
  const T* kh = opt_ptr<T>(keep_h);
  const T* kc = opt_ptr<T>(keep_c);
  const T* rm = opt_ptr<T>(rmask);
  const T* w = w_hh_t.data_ptr<T>();
  const T* xpp = xp.data_ptr<T>();
  T* hsp = hs.data_ptr<T>();
  T* csp = cs.data_ptr<T>();
  std::vector<T> zeros(BH, T(0)), hm(rm ? BH : 0), r(B * G), th(H);
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hp = t ? hsp + (t - 1) * BH : h0.data_ptr<T>();
    const T* cp = t ? csp + (t - 1) * BH : c0.data_ptr<T>();
    gemm_nn<T>(B, G, H, masked(hp, rm, hm.data(), BH), w, T(0), r.data());
    const T* zh = keep_at(kh, t, BH, zeros);
    const T* zc = keep_at(kc, t, BH, zeros);
    T* g4 = gates.data_ptr<T>() + t * B * G;
    T* rh = rhat.data_ptr<T>() + t * B * G;
    T* rs = rstd_r.data_ptr<T>() + t * B;
    T* cc = ct.data_ptr<T>() + t * BH;
    T* ch = chat.data_ptr<T>() + t * BH;
    T* cs_ = rstd_c.data_ptr<T>() + t * B;
    T* h = hsp + t * BH;
    T* c = csp + t * BH;
    for (int64_t b = 0; b < B; ++b) {
      T* gb = g4 + b * G;
      T* rhb = rh + b * G;
      const int64_t o = b * H;
      rs[b] = normalize_row(r.data() + b * G, rhb, G, eps);
      const T* xb = xpp + (t * B + b) * G;
      for (int64_t j = 0; j < G; ++j) gb[j] = xb[j] + gh[j] * rhb[j];
      sigmoid_inplace(gb, 2 * H);
      tanh_into(gb + 2 * H, gb + 2 * H, H);
      sigmoid_inplace(gb + 3 * H, H);
      for (int64_t j = 0; j < H; ++j) cc[o + j] = gb[H + j] * cp[o + j] + gb[j] * gb[2 * H + j];
      cs_[b] = normalize_row(cc + o, ch + o, H, eps);
      for (int64_t j = 0; j < H; ++j) th[j] = gc[j] * ch[o + j] + bc[j];
      tanh_into(th.data(), th.data(), H);
      #pragma omp simd  // independent j (GCC gives up its alias checks here)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = o + j;
        c[k] = zc[k] * cp[k] + (T(1) - zc[k]) * cc[k];
        h[k] = zh[k] * hp[k] + (T(1) - zh[k]) * (gb[3 * H + j] * th[j]);
      }
    }
  }
}

template <typename T>
void lnlstm_bwd_impl(const Tensor& ghs, const Tensor& gcs, const Tensor& cs, const Tensor& gates,
                     const Tensor& rhat, const Tensor& rstd_r, const Tensor& chat,
                     const Tensor& rstd_c, const Tensor& c0, const Tensor& w_hh,
                     const Tensor& g_hh, const Tensor& g_c, const Tensor& b_c,
                     const Tensor& keep_h, const Tensor& keep_c, const Tensor& rmask, Tensor& da,
                     Tensor& dr, Tensor& dh0, Tensor& dc0, Tensor& dg_hh, Tensor& dg_c,
                     Tensor& db_c) {
  const int64_t Tn = gates.size(0), B = gates.size(1), H = c0.size(1), G = 4 * H, BH = B * H;
  const T* gh = g_hh.data_ptr<T>();
  const T* gc = g_c.data_ptr<T>();
  const T* bc = b_c.data_ptr<T>();
  T* dgh = dg_hh.data_ptr<T>();
  T* dgc = dg_c.data_ptr<T>();
  T* dbc = db_c.data_ptr<T>();
  const T* kh = opt_ptr<T>(keep_h);
  const T* kc = opt_ptr<T>(keep_c);
  const T* rm = opt_ptr<T>(rmask);
  const T* w = w_hh.data_ptr<T>();
  const T* csp = cs.data_ptr<T>();
  const T* ghp = ghs.data_ptr<T>();
  const T* gcp = gcs.data_ptr<T>();
  std::vector<T> zeros(BH, T(0)), dh(BH, T(0)), dc(BH, T(0)), rec(BH), dcn(H), dct(H), dy(G),
      th(H);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* cp = t ? csp + (t - 1) * BH : c0.data_ptr<T>();
    const T* g4 = gates.data_ptr<T>() + t * B * G;
    const T* rh = rhat.data_ptr<T>() + t * B * G;
    const T* rs = rstd_r.data_ptr<T>() + t * B;
    const T* ch = chat.data_ptr<T>() + t * BH;
    const T* csd = rstd_c.data_ptr<T>() + t * B;
    T* d4 = da.data_ptr<T>() + t * B * G;
    T* dr4 = dr.data_ptr<T>() + t * B * G;
    const T* zh = keep_at(kh, t, BH, zeros);
    const T* zc = keep_at(kc, t, BH, zeros);
    const T* ght = ghp + t * BH;
    const T* gct = gcp + t * BH;
    for (int64_t b = 0; b < B; ++b) {
      const T* gb = g4 + b * G;
      T* db = d4 + b * G;
      const int64_t o = b * H;
      for (int64_t j = 0; j < H; ++j) th[j] = gc[j] * ch[o + j] + bc[j];
      tanh_into(th.data(), th.data(), H);
      // through h~ = o tanh(LN(c~)) into dL/dLN(c~)-input (dcn) and do
      #pragma omp simd  // independent j (GCC gives up its alias checks here)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = o + j;
        const T dhk = dh[k] + ght[k];
        const T dhn = (T(1) - zh[k]) * dhk;
        const T og = gb[3 * H + j];
        const T tc = th[j];
        db[3 * H + j] = dhn * tc * og * (T(1) - og);
        const T dln = dhn * og * (T(1) - tc * tc);  // dL/d LN(c~)
        dgc[j] += dln * ch[k];
        dbc[j] += dln;
        dcn[j] = dln * gc[j];
        dh[k] = zh[k] * dhk;  // direct path; the recurrent one is added after the GEMM
      }
      normalize_row_backward(dcn.data(), ch + o, csd[b], dct.data(), H);
      #pragma omp simd  // independent j (GCC gives up its alias checks here)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = o + j;
        const T dck = dc[k] + gct[k];
        const T dctot = dct[j] + (T(1) - zc[k]) * dck;
        const T i = gb[j], f = gb[H + j], g = gb[2 * H + j];
        db[j] = dctot * g * i * (T(1) - i);
        db[H + j] = dctot * cp[k] * f * (T(1) - f);
        db[2 * H + j] = dctot * i * (T(1) - g * g);
        dc[k] = dctot * f + zc[k] * dck;
      }
      // a = xp + g_hh * r^: into the recurrent LN
      const T* rhb = rh + b * G;
      for (int64_t j = 0; j < G; ++j) {
        dgh[j] += db[j] * rhb[j];
        dy[j] = db[j] * gh[j];
      }
      normalize_row_backward(dy.data(), rhb, rs[b], dr4 + b * G, G);
    }
    gemm_nn<T>(B, H, G, dr4, w, T(0), rec.data());  // [B, 4H] x [4H, H]
    add_recurrent(dh.data(), rec.data(), rm, BH);
  }
  std::copy(dh.begin(), dh.end(), dh0.data_ptr<T>());
  std::copy(dc.begin(), dc.end(), dc0.data_ptr<T>());
}


// ---------------------------------------------------------------- GRU (torch's equations) ----
// u = W_hh h_{t-1} + b_hh; r = s(x_r + u_r), z = s(x_z + u_z), n = tanh(x_n + r u_n);
// h~ = n + z (h_{t-1} - n); then keep (padding). Saved per step (training only): r, z, n, u_n
// ([T, B, 4H]); without saving (inference) the gates live in a one-row scratch buffer.
template <typename T>
void gru_fwd_impl(const Tensor& xp, const Tensor& h0, const Tensor& w_hh_t, const Tensor& b_hh,
                  const Tensor& keep_h, bool save, Tensor& hs, Tensor& saved) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = h0.size(1), BH = B * H;
  const T* kh = opt_ptr<T>(keep_h);
  const T* bias = opt_ptr<T>(b_hh);
  const T* w = w_hh_t.data_ptr<T>();
  const T* xpp = xp.data_ptr<T>();
  T* hsp = hs.data_ptr<T>();
  T* svp = save ? saved.data_ptr<T>() : nullptr;
  std::vector<T> zeros(BH, T(0)), u(B * 3 * H), scratch(4 * H);
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hp = t ? hsp + (t - 1) * BH : h0.data_ptr<T>();
    if (bias) {
      for (int64_t b = 0; b < B; ++b) std::copy(bias, bias + 3 * H, u.data() + b * 3 * H);
    }
    gemm_nn<T>(B, 3 * H, H, hp, w, bias ? T(1) : T(0), u.data());
    const T* zk = keep_at(kh, t, BH, zeros);
    T* h = hsp + t * BH;
    for (int64_t b = 0; b < B; ++b) {
      const T* xb = xpp + (t * B + b) * 3 * H;
      const T* ub = u.data() + b * 3 * H;
      T* sb = save ? svp + (t * B + b) * 4 * H : scratch.data();  // r, z, n, u_n
      for (int64_t j = 0; j < 2 * H; ++j) sb[j] = xb[j] + ub[j];
      sigmoid_inplace(sb, 2 * H);
      for (int64_t j = 0; j < H; ++j) {
        sb[3 * H + j] = ub[2 * H + j];
        sb[2 * H + j] = xb[2 * H + j] + sb[j] * ub[2 * H + j];
      }
      tanh_into(sb + 2 * H, sb + 2 * H, H);
      const int64_t o = b * H;
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = o + j;
        const T n = sb[2 * H + j];
        const T hn = n + sb[H + j] * (hp[k] - n);
        h[k] = zk[k] * hp[k] + (T(1) - zk[k]) * hn;
      }
    }
  }
}

template <typename T>
void gru_bwd_impl(const Tensor& gh, const Tensor& hs, const Tensor& saved, const Tensor& h0,
                  const Tensor& w_hh, const Tensor& keep_h, Tensor& dxp, Tensor& du,
                  Tensor& dh0) {
  const int64_t Tn = hs.size(0), B = hs.size(1), H = h0.size(1), BH = B * H;
  const T* kh = opt_ptr<T>(keep_h);
  const T* ghp = gh.data_ptr<T>();
  const T* w = w_hh.data_ptr<T>();
  const T* hsp = hs.data_ptr<T>();
  const T* svp = saved.data_ptr<T>();
  T* dxpp = dxp.data_ptr<T>();
  T* dupp = du.data_ptr<T>();
  std::vector<T> zeros(BH, T(0)), dh(BH, T(0)), rec(BH);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* hp = t ? hsp + (t - 1) * BH : h0.data_ptr<T>();
    const T* zk = keep_at(kh, t, BH, zeros);
    const T* ght = ghp + t * BH;
    T* dup = dupp + t * B * 3 * H;
    for (int64_t b = 0; b < B; ++b) {
      const T* sb = svp + (t * B + b) * 4 * H;
      T* dxb = dxpp + (t * B + b) * 3 * H;
      T* dub = dup + b * 3 * H;
      const int64_t o = b * H;
      #pragma omp simd  // independent j (GCC gives up its alias checks here)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = o + j;
        const T d = dh[k] + ght[k];
        const T dhn = (T(1) - zk[k]) * d;
        const T r = sb[j], z = sb[H + j], n = sb[2 * H + j], un = sb[3 * H + j];
        const T dan = dhn * (T(1) - z) * (T(1) - n * n);
        const T daz = dhn * (hp[k] - n) * z * (T(1) - z);
        const T dar = dan * un * r * (T(1) - r);
        dxb[j] = dar; dxb[H + j] = daz; dxb[2 * H + j] = dan;
        dub[j] = dar; dub[H + j] = daz; dub[2 * H + j] = dan * r;
        dh[k] = zk[k] * d + dhn * z;
      }
    }
    gemm_nn<T>(B, H, 3 * H, dup, w, T(0), rec.data());  // [B, 3H] x [3H, H]
    add_recurrent<T>(dh.data(), rec.data(), nullptr, BH);
  }
  std::copy(dh.begin(), dh.end(), dh0.data_ptr<T>());
}

}  // namespace


std::vector<Tensor> peephole_forward(Tensor xp, Tensor h0, Tensor c0, Tensor w_hh_t, Tensor w_ch,
                                     Tensor keep_h, Tensor keep_c, Tensor rmask) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = h0.size(1);
  auto o = h0.options();
  Tensor hs = at::empty({Tn, B, H}, o), cs = at::empty({Tn, B, H}, o);
  Tensor gates = at::empty({Tn, B, 4 * H}, o), ct = at::empty({Tn, B, H}, o);
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "peephole_forward", [&] {
    peephole_fwd_impl<scalar_t>(xp.contiguous(), h0.contiguous(), c0.contiguous(),
                                w_hh_t.contiguous(), w_ch.contiguous(), keep_h, keep_c, rmask, hs,
                                cs, gates, ct);
  });
  return {hs, cs, gates, ct};
}

std::vector<Tensor> peephole_backward(Tensor gh, Tensor gc, Tensor hs, Tensor cs, Tensor gates,
                                      Tensor ct, Tensor h0, Tensor c0, Tensor w_hh, Tensor w_ch,
                                      Tensor keep_h, Tensor keep_c, Tensor rmask) {
  Tensor da = at::empty_like(gates), dh0 = at::empty_like(h0), dc0 = at::empty_like(c0);
  Tensor dw_ch = at::zeros_like(w_ch);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "peephole_backward", [&] {
    peephole_bwd_impl<scalar_t>(gh.contiguous(), gc.contiguous(), hs, cs, gates, ct,
                                h0.contiguous(), c0.contiguous(), w_hh.contiguous(),
                                w_ch.contiguous(), keep_h, keep_c, rmask, da, dh0, dc0, dw_ch);
  });
  return {da, dh0, dc0, dw_ch};
}

std::vector<Tensor> indrnn_forward(Tensor xp, Tensor h0, Tensor u, Tensor keep_h, Tensor rmask,
                                   bool relu) {
  Tensor hs = at::empty_like(xp), hn = at::empty_like(xp);
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "indrnn_forward", [&] {
    indrnn_fwd_impl<scalar_t>(xp.contiguous(), h0.contiguous(), u.contiguous(), keep_h, rmask,
                              relu, hs, hn);
  });
  return {hs, hn};
}

std::vector<Tensor> indrnn_backward(Tensor gh, Tensor hs, Tensor hn, Tensor h0, Tensor u,
                                    Tensor keep_h, Tensor rmask, bool relu) {
  Tensor dxp = at::empty_like(hs), dh0 = at::empty_like(h0), du = at::zeros_like(u);
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "indrnn_backward", [&] {
    indrnn_bwd_impl<scalar_t>(gh.contiguous(), hs, hn, h0.contiguous(), u.contiguous(), keep_h,
                              rmask, relu, dxp, dh0, du);
  });
  return {dxp, dh0, du};
}

std::vector<Tensor> lnlstm_forward(Tensor xp, Tensor h0, Tensor c0, Tensor w_hh_t, Tensor g_hh,
                                   Tensor g_c, Tensor b_c, Tensor keep_h, Tensor keep_c,
                                   Tensor rmask, double eps) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = h0.size(1);
  auto o = h0.options();
  Tensor hs = at::empty({Tn, B, H}, o), cs = at::empty({Tn, B, H}, o);
  Tensor gates = at::empty({Tn, B, 4 * H}, o), rhat = at::empty({Tn, B, 4 * H}, o);
  Tensor rstd_r = at::empty({Tn, B}, o), ct = at::empty({Tn, B, H}, o);
  Tensor chat = at::empty({Tn, B, H}, o), rstd_c = at::empty({Tn, B}, o);
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "lnlstm_forward", [&] {
    lnlstm_fwd_impl<scalar_t>(xp.contiguous(), h0.contiguous(), c0.contiguous(),
                              w_hh_t.contiguous(), g_hh.contiguous(), g_c.contiguous(),
                              b_c.contiguous(), keep_h, keep_c, rmask, scalar_t(eps), hs, cs,
                              gates, rhat, rstd_r, ct, chat, rstd_c);
  });
  return {hs, cs, gates, rhat, rstd_r, chat, rstd_c};
}

std::vector<Tensor> lnlstm_backward(Tensor ghs, Tensor gcs, Tensor cs, Tensor gates, Tensor rhat,
                                    Tensor rstd_r, Tensor chat, Tensor rstd_c, Tensor c0,
                                    Tensor w_hh, Tensor g_hh, Tensor g_c, Tensor b_c,
                                    Tensor keep_h, Tensor keep_c, Tensor rmask) {
  Tensor da = at::empty_like(gates), dr = at::empty_like(gates);
  Tensor dh0 = at::empty_like(c0), dc0 = at::empty_like(c0);
  Tensor dg_hh = at::zeros_like(g_hh), dg_c = at::zeros_like(g_c), db_c = at::zeros_like(b_c);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lnlstm_backward", [&] {
    lnlstm_bwd_impl<scalar_t>(ghs.contiguous(), gcs.contiguous(), cs, gates, rhat, rstd_r, chat,
                              rstd_c, c0.contiguous(), w_hh.contiguous(), g_hh.contiguous(),
                              g_c.contiguous(), b_c.contiguous(), keep_h, keep_c, rmask, da, dr,
                              dh0, dc0, dg_hh, dg_c, db_c);
  });
  return {da, dr, dh0, dc0, dg_hh, dg_c, db_c};
}

std::vector<Tensor> gru_forward(Tensor xp, Tensor h0, Tensor w_hh_t, Tensor b_hh, Tensor keep_h,
                                bool save) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = h0.size(1);
  Tensor hs = at::empty({Tn, B, H}, h0.options());
  Tensor saved = at::empty({save ? Tn : 0, B, 4 * H}, h0.options());
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "gru_forward", [&] {
    gru_fwd_impl<scalar_t>(xp.contiguous(), h0.contiguous(), w_hh_t.contiguous(),
                           b_hh.contiguous(), keep_h, save, hs, saved);
  });
  return {hs, saved};
}

std::vector<Tensor> gru_backward(Tensor gh, Tensor hs, Tensor saved, Tensor h0, Tensor w_hh,
                                 Tensor keep_h) {
  const int64_t Tn = hs.size(0), B = hs.size(1), H = h0.size(1);
  Tensor dxp = at::empty({Tn, B, 3 * H}, hs.options()), du = at::empty_like(dxp);
  Tensor dh0 = at::empty_like(h0);
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "gru_backward", [&] {
    gru_bwd_impl<scalar_t>(gh.contiguous(), hs, saved, h0.contiguous(), w_hh.contiguous(), keep_h,
                           dxp, du, dh0);
  });
  return {dxp, du, dh0};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("peephole_forward", &peephole_forward, "peephole LSTM: time loop, forward");
  m.def("peephole_backward", &peephole_backward, "peephole LSTM: BPTT");
  m.def("indrnn_forward", &indrnn_forward, "IndRNN: time loop, forward");
  m.def("indrnn_backward", &indrnn_backward, "IndRNN: BPTT");
  m.def("lnlstm_forward", &lnlstm_forward, "layer-norm LSTM: time loop, forward");
  m.def("lnlstm_backward", &lnlstm_backward, "layer-norm LSTM: BPTT");
  m.def("gru_forward", &gru_forward, "GRU: time loop, forward");
  m.def("gru_backward", &gru_backward, "GRU: BPTT");
}
