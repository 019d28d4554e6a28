// Shared pieces of rnnkit's native time loops (lstm.cpp, gru.cpp, indrnn.cpp): the C ABI, the
// per-step GEMM, vectorized exp/tanh, the keep/mask helpers and the row layer norm.
//
// No PyTorch header is included (they cost 8-30 s of compile time per translation unit): the
// kernels see raw contiguous buffers, and rnnkit/backends/native.py allocates the tensors and
// calls the exported functions through ctypes.
//
// Speed (issue 4): per step there is one GEMM (the recurrent projection), called directly on raw
// pointers -- BLAS sgemm_/dgemm_ from libtorch_cpu when RNNKIT_BLAS is defined, else one at::mm
// (gemm_aten.cpp) -- and nothing is allocated inside the time loop. The elementwise gate math
// runs in passes over contiguous rows; exp/tanh go through sigmoid_inplace / tanh_into, which
// use AVX2 and libtorch_cpu's Sleef_expf8_u10 (1-ulp) when RNNKIT_VEC is defined (chosen at
// runtime by native.py; never -march=native) and std:: scalar code otherwise. float64 always
// takes the scalar path, so the float64 gradchecks test the exact same formulas.
//
// Layout: time-major, contiguous. keep_h / keep_c [T, B, H] (or null):
// s_t = keep * s_{t-1} + (1 - keep) * s~_t -- zoneout masks (training), the zoneout probability
// (evaluation), and 1 at padded steps (lengths). rmask [B, H] (or null): variational recurrent
// dropout, h_{t-1} -> h_{t-1} * rmask.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#ifdef RNNKIT_VEC
#include <immintrin.h>
extern "C" __m256 Sleef_expf8_u10(__m256);  // exported by libtorch_cpu (native.py checks)
#endif

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

namespace rnnkit {

#ifndef RNNKIT_BLAS
// gemm_aten.cpp: the same contract as gemm_nn, through at::mm (builds without BLAS symbols)
void gemm_aten(int64_t M, int64_t N, int64_t K, const float* A, const float* W, float beta,
               float* C);
void gemm_aten(int64_t M, int64_t N, int64_t K, const double* A, const double* W, double beta,
               double* C);
void gemm_aten_tn_acc(int64_t M, int64_t N, int64_t K, const float* A, const float* Bm,
                      float* C);
void gemm_aten_tn_acc(int64_t M, int64_t N, int64_t K, const double* A, const double* Bm,
                      double* C);
#endif

// ---------------------------------------------------------------- C ABI ----------------------
// Every kernel is exported as rnnkit_<name>_f32 / _f64 (const int64_t* dims, void* const* ptrs,
// double scalar): dims = {T, B, H, flag}; ptrs = the inputs then the outputs, in the order each
// kernel documents (native.py passes them in that order); a null pointer is an absent optional.
template <typename T>
struct Args {
  int64_t Tn, B, H, flag;
  double scalar;
  void* const* ptrs;
  T* operator[](int k) const { return static_cast<T*>(ptrs[k]); }
};

#define RNNKIT_EXPORT(name, kernel)                                                          \
  extern "C" void rnnkit_##name##_f32(const int64_t* d, void* const* p, double s) {          \
    kernel<float>(rnnkit::Args<float>{d[0], d[1], d[2], d[3], s, p});                        \
  }                                                                                          \
  extern "C" void rnnkit_##name##_f64(const int64_t* d, void* const* p, double s) {          \
    kernel<double>(rnnkit::Args<double>{d[0], d[1], d[2], d[3], s, p});                     \
  }

// ---------------------------------------------------------------- primitives ------------------
#ifdef RNNKIT_BLAS
// Fortran (column-major) C = beta * C + op(A) @ op(B), single or double precision
template <typename T>
inline void blas_gemm(char ta, char tb, int m, int n, int k, const T* A, int lda, const T* B,
                      int ldb, T beta, T* C, int ldc) {
  const T one = T(1);
  if constexpr (std::is_same_v<T, float>) {
    sgemm_(&ta, &tb, &m, &n, &k, &one, A, &lda, B, &ldb, &beta, C, &ldc);
  } else {
    dgemm_(&ta, &tb, &m, &n, &k, &one, A, &lda, B, &ldb, &beta, C, &ldc);
  }
}
#endif

// Row-major C[M, N] = beta * C + A[M, K] @ W[K, N] (all contiguous).
template <typename T>
inline void gemm_nn(int64_t M, int64_t N, int64_t K, const T* A, const T* W, T beta, T* C) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t k = 0; k < M * N; ++k) C[k] = beta == T(0) ? T(0) : beta * C[k];
    return;
  }
#ifdef RNNKIT_BLAS
  // column-major view: C^T [N, M] = W^T [N, K] @ A^T [K, M]
  blas_gemm<T>('N', 'N', int(N), int(M), int(K), W, int(N), A, int(K), beta, C, int(N));
#else
  gemm_aten(M, N, K, A, W, beta, C);
#endif
}

// Row-major C[M, N] += A[K, M]^T @ B[K, N] (all contiguous)
template <typename T>
inline void gemm_tn_acc(int64_t M, int64_t N, int64_t K, const T* A, const T* Bm, T* C) {
  if (M == 0 || N == 0 || K == 0) return;
#ifdef RNNKIT_BLAS
  // column-major view: C^T [N, M] += B^T [N, K] @ A [K, M]
  blas_gemm<T>('N', 'T', int(N), int(M), int(K), Bm, int(N), A, int(M), T(1), C, int(N));
#else
  gemm_aten_tn_acc(M, N, K, A, Bm, C);
#endif
}

// The recurrent weight's gradient dW_hh [G, H] = sum_t d_t^T (h_{t-1} * rmask), d_t [B, G]
// the gradient of W_hh h_{t-1}, accumulated in chunks of about 256 rows: the backward loop
// writes each step's d_t into step_rows() (and uses it there for its own GEMM), and one GEMM
// per full chunk adds the chunk to dW. No [T, B, G] tensor is allocated and written (its
// first-touch page faults cost as much as the rest of the LN-LSTM backward at B=8, H=64), and
// the chunk is still in cache for the GEMM.
template <typename T>
class WeightGrad {
 public:
  WeightGrad(int64_t B, int64_t G, int64_t H, T* dW)
      : B_(B), G_(G), H_(H), cap_(std::max<int64_t>(B, 256 / std::max<int64_t>(B, 1) * B)),
        d_(cap_ * G), h_(cap_ * H), dW_(dW) {}
  // where to write d_t [B, G]; h_{t-1} [B, H] (times rmask, if any) is recorded beside it
  T* step_rows(const T* hp, const T* rm) {
    if (n_ + B_ > cap_) flush();
    T* hrow = h_.data() + n_ * H_;
    if (rm) {
      for (int64_t k = 0; k < B_ * H_; ++k) hrow[k] = hp[k] * rm[k];
    } else {
      std::memcpy(hrow, hp, sizeof(T) * B_ * H_);
    }
    T* drow = d_.data() + n_ * G_;
    n_ += B_;
    return drow;
  }
  void flush() {
    gemm_tn_acc<T>(G_, H_, n_, d_.data(), h_.data(), dW_);
    n_ = 0;
  }

 private:
  int64_t B_, G_, H_, cap_, n_ = 0;
  std::vector<T> d_, h_;
  T* dW_;
};

template <typename T>
inline void sigmoid_inplace(T* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) x[j] = T(1) / (T(1) + std::exp(-x[j]));
}

template <typename T>
inline void tanh_into(const T* x, T* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] = std::tanh(x[j]);
}

#ifdef RNNKIT_VEC
inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.f);
  return _mm256_div_ps(one, _mm256_add_ps(one, Sleef_expf8_u10(_mm256_sub_ps(_mm256_setzero_ps(),
                                                                             x))));
}

// tanh(x) = 1 - 2 / (1 + exp(2x)): one Sleef exp instead of Sleef's slower tanh (measured 3x
// the cost of exp); absolute error ~1e-7, saturates to +-1 exactly (exp -> inf / 0).
inline __m256 tanh8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.f), two = _mm256_set1_ps(2.f);
  return _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(one, Sleef_expf8_u10(
                                                                      _mm256_add_ps(x, x)))));
}

// y[0:n] = f(x[0:n]) eight at a time; the tail goes through a padded 8-float buffer
template <typename F>
inline void map8(const float* x, float* y, int64_t n, F f) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(y + j, f(_mm256_loadu_ps(x + j)));
  if (j < n) {
    alignas(32) float buf[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    std::memcpy(buf, x + j, sizeof(float) * (n - j));
    _mm256_store_ps(buf, f(_mm256_load_ps(buf)));
    std::memcpy(y + j, buf, sizeof(float) * (n - j));
  }
}

template <>
inline void sigmoid_inplace<float>(float* x, int64_t n) { map8(x, x, n, sigmoid8); }

template <>
inline void tanh_into<float>(const float* x, float* y, int64_t n) { map8(x, y, n, tanh8); }
#endif

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

// The recurrent path of a backward step: dh [B, H] += (d [B, G] @ W_hh [G, H]) (* rmask);
// rec [B, H] is scratch.
template <typename T>
inline void backprop_recurrent(int64_t B, int64_t H, int64_t G, const T* d, const T* w,
                               const T* rm, T* rec, T* dh) {
  gemm_nn<T>(B, H, G, d, w, T(0), rec);
  if (rm) {
    for (int64_t k = 0; k < B * H; ++k) dh[k] += rec[k] * rm[k];
  } else {
    for (int64_t k = 0; k < B * H; ++k) dh[k] += rec[k];
  }
}

// ---------------------------------------------------------------- layer norm of one row ------
// out = (v - mean) * rstd, returns rstd = 1 / sqrt(var + eps) (biased variance, as F.layer_norm)
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
#pragma omp simd
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
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dx[j] = rstd * (dy[j] - m1 - xhat[j] * m2);
}

}  // namespace rnnkit
