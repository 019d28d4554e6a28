// Native time loops with hand-written backpropagation through time for rnnkit's custom cells.
// Built on first use by rnnkit/backends/native.py (torch.utils.cpp_extension.load_inline, plain
// -O3, no -march=native) and cached. One ATen GEMM per step (the recurrent projection); all
// elementwise work is a raw loop, so the per-step cost is one dispatch instead of ~20.
//
// Layout: time-major, contiguous. xp [T, B, G] already holds W_ih x_t + b_ih + b_hh.
// keep_h / keep_c [T, B, H] (or empty): s_t = keep * s_{t-1} + (1 - keep) * s~_t -- zoneout
// masks (training), the zoneout probability (evaluation), and 1 at padded steps (lengths).
// rmask [B, H] (or empty): variational recurrent dropout, h_{t-1} -> h_{t-1} * rmask.
#include <torch/extension.h>

#include <cmath>
#include <vector>

using at::Tensor;

namespace {

template <typename T>
inline T sigm(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <typename T>
inline const T* opt_ptr(const Tensor& t) { return t.numel() ? t.data_ptr<T>() : nullptr; }

// ---------------------------------------------------------------- peephole LSTM ---------------
// i = s(a_i + p_i c_{t-1}), f = s(a_f + p_f c_{t-1}), g = tanh(a_g), c~ = f c_{t-1} + i g,
// o = s(a_o + p_o c~), h~ = o tanh(c~); then zoneout/keep.
template <typename T>
void peephole_fwd_impl(const Tensor& xp, const Tensor& h0, const Tensor& c0, const Tensor& w_hh_t,
                       const Tensor& w_ch, const Tensor& keep_h, const Tensor& keep_c,
                       const Tensor& rmask, Tensor& hs, Tensor& cs, Tensor& gates, Tensor& ct) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = h0.size(1);
  const T* pch = w_ch.data_ptr<T>();
  const T *pi = pch, *pf = pch + H, *po = pch + 2 * H;
  const T* kh = opt_ptr<T>(keep_h);
  const T* kc = opt_ptr<T>(keep_c);
  const T* rm = opt_ptr<T>(rmask);
  Tensor hm = at::empty({B, H}, h0.options());
  for (int64_t t = 0; t < Tn; ++t) {
    const Tensor hp_t = t ? hs[t - 1] : h0;
    const T* hp = hp_t.data_ptr<T>();
    const T* cp = (t ? cs[t - 1] : c0).data_ptr<T>();
    Tensor a = gates[t];
    if (rm) {
      T* m = hm.data_ptr<T>();
      for (int64_t k = 0; k < B * H; ++k) m[k] = hp[k] * rm[k];
      at::addmm_out(a, xp[t], hm, w_hh_t);
    } else {
      at::addmm_out(a, xp[t], hp_t, w_hh_t);
    }
    T* g4 = a.data_ptr<T>();
    T* h = hs[t].data_ptr<T>();
    T* c = cs[t].data_ptr<T>();
    T* cc = ct[t].data_ptr<T>();
    const int64_t off = t * B * H;
    for (int64_t b = 0; b < B; ++b) {
      T* gb = g4 + b * 4 * H;
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T cpk = cp[k];
        const T i = sigm(gb[j] + pi[j] * cpk);
        const T f = sigm(gb[H + j] + pf[j] * cpk);
        const T g = std::tanh(gb[2 * H + j]);
        const T cn = f * cpk + i * g;
        const T o = sigm(gb[3 * H + j] + po[j] * cn);
        const T hn = o * std::tanh(cn);
        gb[j] = i; gb[H + j] = f; gb[2 * H + j] = g; gb[3 * H + j] = o;
        cc[k] = cn;
        const T zc = kc ? kc[off + k] : T(0), zh = kh ? kh[off + k] : T(0);
        c[k] = zc * cpk + (T(1) - zc) * cn;
        h[k] = zh * hp[k] + (T(1) - zh) * hn;
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
  const int64_t Tn = gates.size(0), B = gates.size(1), H = h0.size(1);
  const T* pch = w_ch.data_ptr<T>();
  const T *pi = pch, *pf = pch + H, *po = pch + 2 * H;
  T* dp = dw_ch.data_ptr<T>();
  T *dpi = dp, *dpf = dp + H, *dpo = dp + 2 * H;
  const T* kh = opt_ptr<T>(keep_h);
  const T* kc = opt_ptr<T>(keep_c);
  const T* rm = opt_ptr<T>(rmask);
  Tensor dh_rec = at::empty({B, H}, h0.options());
  std::vector<T> dh(B * H), dc(B * H);  // carries: dL/dh_t, dL/dc_t from the future
  const T* ghp = gh.data_ptr<T>();
  const T* gcp = gc.data_ptr<T>();
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* cp = (t ? cs[t - 1] : c0).data_ptr<T>();
    const T* g4 = gates[t].data_ptr<T>();
    const T* cc = ct[t].data_ptr<T>();
    T* d4 = da[t].data_ptr<T>();
    const int64_t off = t * B * H;
    for (int64_t b = 0; b < B; ++b) {
      const T* gb = g4 + b * 4 * H;
      T* db = d4 + b * 4 * H;
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T dhk = dh[k] + ghp[off + k], dck = dc[k] + gcp[off + k];
        const T zc = kc ? kc[off + k] : T(0), zh = kh ? kh[off + k] : T(0);
        const T dhn = (T(1) - zh) * dhk;
        T dcn = (T(1) - zc) * dck;
        const T i = gb[j], f = gb[H + j], g = gb[2 * H + j], o = gb[3 * H + j];
        const T cn = cc[k], tc = std::tanh(cn), cpk = cp[k];
        const T dao = dhn * tc * o * (T(1) - o);
        dcn += dhn * o * (T(1) - tc * tc) + dao * po[j];
        dpo[j] += dao * cn;
        const T dai = dcn * g * i * (T(1) - i);
        const T daf = dcn * cpk * f * (T(1) - f);
        const T dag = dcn * i * (T(1) - g * g);
        dpi[j] += dai * cpk;
        dpf[j] += daf * cpk;
        db[j] = dai; db[H + j] = daf; db[2 * H + j] = dag; db[3 * H + j] = dao;
        dc[k] = dcn * f + dai * pi[j] + daf * pf[j] + zc * dck;
        dh[k] = zh * dhk;  // the direct path; the recurrent one is added below
      }
    }
    at::mm_out(dh_rec, da[t], w_hh);  // [B, 4H] x [4H, H]
    const T* r = dh_rec.data_ptr<T>();
    for (int64_t k = 0; k < B * H; ++k) dh[k] += rm ? r[k] * rm[k] : r[k];
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
  for (int64_t j = 0; j < n; ++j) mean += v[j];
  mean /= T(n);
  T var = 0;
  for (int64_t j = 0; j < n; ++j) var += (v[j] - mean) * (v[j] - mean);
  const T rstd = T(1) / std::sqrt(var / T(n) + eps);
  for (int64_t j = 0; j < n; ++j) out[j] = (v[j] - mean) * rstd;
  return rstd;
}

// dx = rstd * (dy - mean(dy) - x^ * mean(dy * x^)), the LN backward given dy = dL/dx^
template <typename T>
inline void normalize_row_backward(const T* dy, const T* xhat, T rstd, T* dx, int64_t n) {
  T m1 = 0, m2 = 0;
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
  const int64_t Tn = xp.size(0), B = xp.size(1), H = h0.size(1), G = 4 * H;
  const T* gh = g_hh.data_ptr<T>();
  const T* gc = g_c.data_ptr<T>();
  const T* bc = b_c.data_ptr<T>();
  const T* kh = opt_ptr<T>(keep_h);
  const T* kc = opt_ptr<T>(keep_c);
  const T* rm = opt_ptr<T>(rmask);
  Tensor hm = at::empty({B, H}, h0.options()), r = at::empty({B, G}, h0.options());
  const T* xpp = xp.data_ptr<T>();
  T* rp = r.data_ptr<T>();
  for (int64_t t = 0; t < Tn; ++t) {
    const Tensor hp_t = t ? hs[t - 1] : h0;
    const T* hp = hp_t.data_ptr<T>();
    const T* cp = (t ? cs[t - 1] : c0).data_ptr<T>();
    if (rm) {
      T* m = hm.data_ptr<T>();
      for (int64_t k = 0; k < B * H; ++k) m[k] = hp[k] * rm[k];
      at::mm_out(r, hm, w_hh_t);
    } else {
      at::mm_out(r, hp_t, w_hh_t);
    }
    const int64_t off = t * B * H;
    T* g4 = gates[t].data_ptr<T>();
    T* rh = rhat[t].data_ptr<T>();
    T* rs = rstd_r[t].data_ptr<T>();
    T* cc = ct[t].data_ptr<T>();
    T* ch = chat[t].data_ptr<T>();
    T* cs_ = rstd_c[t].data_ptr<T>();
    T* h = hs[t].data_ptr<T>();
    T* c = cs[t].data_ptr<T>();
    for (int64_t b = 0; b < B; ++b) {
      T* gb = g4 + b * G;
      T* rhb = rh + b * G;
      rs[b] = normalize_row(rp + b * G, rhb, G, eps);
      const T* xb = xpp + (t * B + b) * G;
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T i = sigm(xb[j] + gh[j] * rhb[j]);
        const T f = sigm(xb[H + j] + gh[H + j] * rhb[H + j]);
        const T g = std::tanh(xb[2 * H + j] + gh[2 * H + j] * rhb[2 * H + j]);
        const T o = sigm(xb[3 * H + j] + gh[3 * H + j] * rhb[3 * H + j]);
        gb[j] = i; gb[H + j] = f; gb[2 * H + j] = g; gb[3 * H + j] = o;
        cc[k] = f * cp[k] + i * g;
      }
      cs_[b] = normalize_row(cc + b * H, ch + b * H, H, eps);
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T hn = gb[3 * H + j] * std::tanh(gc[j] * ch[k] + bc[j]);
        const T zc = kc ? kc[off + k] : T(0), zh = kh ? kh[off + k] : T(0);
        c[k] = zc * cp[k] + (T(1) - zc) * cc[k];
        h[k] = zh * hp[k] + (T(1) - zh) * hn;
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
  const int64_t Tn = gates.size(0), B = gates.size(1), H = c0.size(1), G = 4 * H;
  const T* gh = g_hh.data_ptr<T>();
  const T* gc = g_c.data_ptr<T>();
  const T* bc = b_c.data_ptr<T>();
  T* dgh = dg_hh.data_ptr<T>();
  T* dgc = dg_c.data_ptr<T>();
  T* dbc = db_c.data_ptr<T>();
  const T* kh = opt_ptr<T>(keep_h);
  const T* kc = opt_ptr<T>(keep_c);
  const T* rm = opt_ptr<T>(rmask);
  const T* ghp = ghs.data_ptr<T>();
  const T* gcp = gcs.data_ptr<T>();
  Tensor dh_rec = at::empty({B, H}, c0.options());
  std::vector<T> dh(B * H, T(0)), dc(B * H, T(0)), dcn(H), dy(G);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* cp = (t ? cs[t - 1] : c0).data_ptr<T>();
    const T* g4 = gates[t].data_ptr<T>();
    const T* rh = rhat[t].data_ptr<T>();
    const T* rs = rstd_r[t].data_ptr<T>();
    const T* ch = chat[t].data_ptr<T>();
    const T* csd = rstd_c[t].data_ptr<T>();
    T* d4 = da[t].data_ptr<T>();
    T* dr4 = dr[t].data_ptr<T>();
    const int64_t off = t * B * H;
    for (int64_t b = 0; b < B; ++b) {
      const T* gb = g4 + b * G;
      T* db = d4 + b * G;
      // through h~ = o tanh(LN(c~)) into dL/dLN(c~)-input (dcn) and do
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T dhk = dh[k] + ghp[off + k];
        const T zh = kh ? kh[off + k] : T(0);
        const T dhn = (T(1) - zh) * dhk;
        const T o = gb[3 * H + j];
        const T tc = std::tanh(gc[j] * ch[k] + bc[j]);
        db[3 * H + j] = dhn * tc * o * (T(1) - o);
        const T dln = dhn * o * (T(1) - tc * tc);  // dL/d LN(c~)
        dgc[j] += dln * ch[k];
        dbc[j] += dln;
        dcn[j] = dln * gc[j];
        dh[k] = zh * dhk;  // direct path; the recurrent one is added after the GEMM
      }
      std::vector<T> dct(H);
      normalize_row_backward(dcn.data(), ch + b * H, csd[b], dct.data(), H);
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T dck = dc[k] + gcp[off + k];
        const T zc = kc ? kc[off + k] : T(0);
        const T dctot = dct[j] + (T(1) - zc) * dck;
        const T i = gb[j], f = gb[H + j], g = gb[2 * H + j];
        db[j] = dctot * g * i * (T(1) - i);
        db[H + j] = dctot * cp[k] * f * (T(1) - f);
        db[2 * H + j] = dctot * i * (T(1) - g * g);
        dc[k] = dctot * f + zc * dck;
      }
      // a = xp + g_hh * r^: into the recurrent LN
      const T* rhb = rh + b * G;
      for (int64_t j = 0; j < G; ++j) {
        dgh[j] += db[j] * rhb[j];
        dy[j] = db[j] * gh[j];
      }
      normalize_row_backward(dy.data(), rhb, rs[b], dr4 + b * G, G);
    }
    at::mm_out(dh_rec, dr[t], w_hh);  // [B, 4H] x [4H, H]
    const T* r = dh_rec.data_ptr<T>();
    for (int64_t k = 0; k < B * H; ++k) dh[k] += rm ? r[k] * rm[k] : r[k];
  }
  std::copy(dh.begin(), dh.end(), dh0.data_ptr<T>());
  std::copy(dc.begin(), dc.end(), dc0.data_ptr<T>());
}


// ---------------------------------------------------------------- GRU (torch's equations) ----
// u = W_hh h_{t-1} + b_hh; r = s(x_r + u_r), z = s(x_z + u_z), n = tanh(x_n + r u_n);
// h~ = n + z (h_{t-1} - n); then keep (padding). Saved per step: r, z, n, u_n ([T, B, 4H]).
template <typename T>
void gru_fwd_impl(const Tensor& xp, const Tensor& h0, const Tensor& w_hh_t, const Tensor& b_hh,
                  const Tensor& keep_h, Tensor& hs, Tensor& saved) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = h0.size(1);
  const T* kh = opt_ptr<T>(keep_h);
  Tensor u = at::empty({B, 3 * H}, h0.options());
  const T* up = u.data_ptr<T>();
  const T* xpp = xp.data_ptr<T>();
  for (int64_t t = 0; t < Tn; ++t) {
    const Tensor hp_t = t ? hs[t - 1] : h0;
    const T* hp = hp_t.data_ptr<T>();
    if (b_hh.numel()) {
      at::addmm_out(u, b_hh, hp_t, w_hh_t);
    } else {
      at::mm_out(u, hp_t, w_hh_t);
    }
    T* h = hs[t].data_ptr<T>();
    T* sv = saved[t].data_ptr<T>();
    const int64_t off = t * B * H;
    for (int64_t b = 0; b < B; ++b) {
      const T* xb = xpp + (t * B + b) * 3 * H;
      const T* ub = up + b * 3 * H;
      T* sb = sv + b * 4 * H;
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T r = sigm(xb[j] + ub[j]);
        const T z = sigm(xb[H + j] + ub[H + j]);
        const T n = std::tanh(xb[2 * H + j] + r * ub[2 * H + j]);
        sb[j] = r; sb[H + j] = z; sb[2 * H + j] = n; sb[3 * H + j] = ub[2 * H + j];
        const T hn = n + z * (hp[k] - n);
        const T zk = kh ? kh[off + k] : T(0);
        h[k] = zk * hp[k] + (T(1) - zk) * hn;
      }
    }
  }
}

template <typename T>
void gru_bwd_impl(const Tensor& gh, const Tensor& hs, const Tensor& saved, const Tensor& h0,
                  const Tensor& w_hh, const Tensor& keep_h, Tensor& dxp, Tensor& du,
                  Tensor& dh0) {
  const int64_t Tn = hs.size(0), B = hs.size(1), H = h0.size(1);
  const T* kh = opt_ptr<T>(keep_h);
  const T* ghp = gh.data_ptr<T>();
  Tensor dh_rec = at::empty({B, H}, h0.options());
  std::vector<T> dh(B * H, T(0));
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* hp = (t ? hs[t - 1] : h0).data_ptr<T>();
    const T* sv = saved[t].data_ptr<T>();
    T* dx = dxp[t].data_ptr<T>();
    T* dup = du[t].data_ptr<T>();
    const int64_t off = t * B * H;
    for (int64_t b = 0; b < B; ++b) {
      const T* sb = sv + b * 4 * H;
      T* dxb = dx + b * 3 * H;
      T* dub = dup + b * 3 * H;
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T d = dh[k] + ghp[off + k];
        const T zk = kh ? kh[off + k] : T(0);
        const T dhn = (T(1) - zk) * d;
        const T r = sb[j], z = sb[H + j], n = sb[2 * H + j], un = sb[3 * H + j];
        const T dan = dhn * (T(1) - z) * (T(1) - n * n);
        const T daz = dhn * (hp[k] - n) * z * (T(1) - z);
        const T dar = dan * un * r * (T(1) - r);
        dxb[j] = dar; dxb[H + j] = daz; dxb[2 * H + j] = dan;
        dub[j] = dar; dub[H + j] = daz; dub[2 * H + j] = dan * r;
        dh[k] = zk * d + dhn * z;
      }
    }
    at::mm_out(dh_rec, du[t], w_hh);  // [B, 3H] x [3H, H]
    const T* rr = dh_rec.data_ptr<T>();
    for (int64_t k = 0; k < B * H; ++k) dh[k] += rr[k];
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

std::vector<Tensor> gru_forward(Tensor xp, Tensor h0, Tensor w_hh_t, Tensor b_hh, Tensor keep_h) {
  const int64_t Tn = xp.size(0), B = xp.size(1), H = h0.size(1);
  Tensor hs = at::empty({Tn, B, H}, h0.options()), saved = at::empty({Tn, B, 4 * H}, h0.options());
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "gru_forward", [&] {
    gru_fwd_impl<scalar_t>(xp.contiguous(), h0.contiguous(), w_hh_t.contiguous(),
                           b_hh.contiguous(), keep_h, hs, saved);
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
