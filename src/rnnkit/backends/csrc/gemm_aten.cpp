// The per-step GEMM through ATen (at::mm), compiled only when libtorch_cpu does not export the
// BLAS sgemm_/dgemm_ that common.h calls directly (native.py decides). The only translation unit
// that includes a PyTorch header, the lightest ones that declare these operators.
#define TORCH_ASSERT_ONLY_METHOD_OPERATORS
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>

#include "common.h"

namespace rnnkit {
namespace {

// Row-major C[M, N] = beta * C + A[M, K] @ W[K, N] (all contiguous), on borrowed memory
template <typename T>
void gemm_aten_impl(int64_t M, int64_t N, int64_t K, const T* A, const T* W, T beta, T* C) {
  auto o = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor a = at::from_blob(const_cast<T*>(A), {M, K}, o);
  at::Tensor w = at::from_blob(const_cast<T*>(W), {K, N}, o);
  at::Tensor c = at::from_blob(C, {M, N}, o);
  if (beta == T(0)) {
    at::mm_out(c, a, w);
  } else {
    at::addmm_out(c, c, a, w, beta, 1);
  }
}

// Row-major C[M, N] += A[K, M]^T @ B[K, N]
template <typename T>
void gemm_aten_tn_acc_impl(int64_t M, int64_t N, int64_t K, const T* A, const T* Bm, T* C) {
  auto o = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  at::Tensor a = at::from_blob(const_cast<T*>(A), {K, M}, o);
  at::Tensor b = at::from_blob(const_cast<T*>(Bm), {K, N}, o);
  at::Tensor c = at::from_blob(C, {M, N}, o);
  at::addmm_out(c, c, a.t(), b);
}

}  // namespace

void gemm_aten_tn_acc(int64_t M, int64_t N, int64_t K, const float* A, const float* Bm,
                      float* C) {
  gemm_aten_tn_acc_impl(M, N, K, A, Bm, C);
}

void gemm_aten_tn_acc(int64_t M, int64_t N, int64_t K, const double* A, const double* Bm,
                      double* C) {
  gemm_aten_tn_acc_impl(M, N, K, A, Bm, C);
}

void gemm_aten(int64_t M, int64_t N, int64_t K, const float* A, const float* W, float beta,
               float* C) {
  gemm_aten_impl(M, N, K, A, W, beta, C);
}

void gemm_aten(int64_t M, int64_t N, int64_t K, const double* A, const double* W, double beta,
               double* C) {
  gemm_aten_impl(M, N, K, A, W, beta, C);
}

}  // namespace rnnkit
